import { constants } from "node:fs";
import { access, readdir } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { findPool, POOLS, type PoolSpec } from "../config/pools.js";
import { runHostCommand } from "../shared/process.js";

/**
 * Which pools a host can serve. Functional core: parseTtSmiList and decidePools are pure;
 * detectHardware is the shell that reads /dev/tenstorrent and runs `tt-smi -ls`.
 */

export const DEFAULT_DEVICE_DIR = "/dev/tenstorrent";

export interface Hardware {
  deviceDir: string;
  /** Device node names under deviceDir ("0", "1", ...), sorted numerically. */
  devices: string[];
  /** Absolute path of tt-smi when found on PATH. */
  ttSmi: string | null;
  /** Board model names from `tt-smi -ls` (lower case, one per physical board), or null when not run. */
  boards: string[] | null;
  /** Why tt-smi gave no answer, if it was present and failed. */
  ttSmiError?: string;
}

/** All board names the pool catalogue knows, longest first so "p150a" wins over "p150". */
const KNOWN_BOARDS = [...new Set(POOLS.flatMap((p) => p.boards))].sort((a, b) => b.length - a.length);

/**
 * Parse the board list of `tt-smi -ls`. Lenient about format: table borders (box drawing or
 * ASCII), column order and extra sections do not matter. Only the first section ("All
 * available boards") is read, since later sections ("Boards that can be reset") repeat it.
 * A row naming a known board model counts once per board; the remote chip of an N300 (a
 * second row with the same board number, "n300 R") is not a second board.
 */
export function parseTtSmiList(output: string): string[] {
  const boards: string[] = [];
  const seen = new Set<string>();
  let rowsSeen = false;
  for (const rawLine of output.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (/boards? that can be reset/i.test(line) && rowsSeen) break;
    const cells = line
      .split(/[│┃|]/)
      .map((c) => c.trim())
      .filter(Boolean);
    if (cells.length === 0) continue;
    const lower = cells.map((c) => c.toLowerCase());
    let board: string | undefined;
    for (const cell of lower) {
      board = KNOWN_BOARDS.find((b) => new RegExp(`(^|[^a-z0-9])${b}([^a-z0-9]|$)`).test(cell));
      if (board) break;
    }
    if (!board) continue;
    rowsSeen = true;
    // A remote chip ("n300 R", or PCI id N/A) shares its board with the local chip.
    const series = lower.find((c) => c.includes(board));
    if (series && /\br\b/.test(series.replace(board, ""))) continue;
    const serial = cells.find((c) => /^[0-9a-f]{12,}$/i.test(c));
    const key = serial ? `${board}:${serial.toLowerCase()}` : undefined;
    if (key) {
      if (seen.has(key)) continue;
      seen.add(key);
    }
    boards.push(board);
  }
  return boards;
}

export interface PoolPlan {
  pool: string;
  /** Cards one job of this pool holds. */
  cards: number;
  /** Jobs of this pool that may run at once on this host (card groups; cpu: 1 by default). */
  concurrency: number;
  /** Set when the pool was forced past a hardware check. */
  forced?: string;
}

export interface PoolDecision {
  serve: PoolPlan[];
  refused: { pool: string; reason: string }[];
  notes: string[];
}

function boardsMatching(spec: PoolSpec, boards: readonly string[]): number {
  return boards.filter((b) => spec.boards.includes(b)).length;
}

/** Why this host cannot serve `spec`, or null when it can. */
export function poolShortfall(
  spec: PoolSpec,
  hw: Pick<Hardware, "devices" | "boards" | "deviceDir">,
): string | null {
  if (spec.cards === 0) return null;
  if (hw.devices.length < spec.cards) {
    return `pool ${spec.name} needs ${spec.cards} card${spec.cards > 1 ? "s" : ""} (${spec.description}) but ${hw.deviceDir} has ${hw.devices.length} device node${hw.devices.length === 1 ? "" : "s"}`;
  }
  if (hw.boards && hw.boards.length > 0 && spec.boards.length > 0) {
    const match = boardsMatching(spec, hw.boards);
    // A Galaxy shows as one system; other pools need one matching board per card.
    const need = spec.name === "galaxy" ? 1 : spec.cards;
    if (match < need) {
      const have = summarizeBoards(hw.boards);
      return `pool ${spec.name} needs ${need} ${spec.boards[0]} board${need > 1 ? "s" : ""} but tt-smi reports ${have}`;
    }
  }
  return null;
}

export function summarizeBoards(boards: readonly string[]): string {
  if (boards.length === 0) return "no boards";
  const counts = new Map<string, number>();
  for (const b of boards) counts.set(b, (counts.get(b) ?? 0) + 1);
  return [...counts].map(([b, n]) => `${n}x ${b}`).join(", ");
}

/**
 * Decide which pools to serve. `requested` empty: every pool the hardware allows (cpu
 * always; card pools only when tt-smi identifies the boards, since device nodes alone do
 * not say which model they are). A requested pool the hardware lacks is refused unless
 * `force`. Concurrency: one job per card group (devices / cards per job); cpu: `cpuConcurrency`.
 */
export function decidePools(
  hw: Pick<Hardware, "devices" | "boards" | "deviceDir" | "ttSmi">,
  requested: readonly string[],
  opts: { force?: boolean; cpuConcurrency?: number } = {},
): PoolDecision {
  const serve: PoolPlan[] = [];
  const refused: PoolDecision["refused"] = [];
  const notes: string[] = [];
  const plan = (spec: PoolSpec, forced?: string): PoolPlan => ({
    pool: spec.name,
    cards: spec.cards,
    concurrency:
      spec.cards === 0
        ? Math.max(1, opts.cpuConcurrency ?? 1)
        : Math.max(1, Math.floor(hw.devices.length / spec.cards)),
    ...(forced ? { forced } : {}),
  });

  if (requested.length > 0) {
    for (const name of new Set(requested)) {
      const spec = findPool(name);
      if (!spec) {
        refused.push({
          pool: name,
          reason: `unknown pool "${name}" (known: ${POOLS.map((p) => p.name).join(", ")})`,
        });
        continue;
      }
      const short = poolShortfall(spec, hw);
      if (!short) {
        if (spec.cards > 0 && !hw.boards) {
          notes.push(
            `pool ${name}: board model not verified (${hw.ttSmi ? "tt-smi gave no answer" : "tt-smi not on PATH"})`,
          );
        }
        serve.push(plan(spec));
      } else if (opts.force) {
        notes.push(`pool ${name} forced: ${short}`);
        serve.push(plan(spec, short));
      } else {
        refused.push({ pool: name, reason: `${short}; pass --force to serve it anyway` });
      }
    }
    return { serve, refused, notes };
  }

  for (const spec of POOLS) {
    if (spec.cards === 0) {
      serve.push(plan(spec));
      continue;
    }
    if (hw.devices.length === 0) continue;
    if (!hw.boards || hw.boards.length === 0) continue;
    if (poolShortfall(spec, hw) === null && boardsMatching(spec, hw.boards) > 0) serve.push(plan(spec));
  }
  if (hw.devices.length > 0 && (!hw.boards || hw.boards.length === 0)) {
    notes.push(
      `${hw.devices.length} device node${hw.devices.length > 1 ? "s" : ""} in ${hw.deviceDir} but the board model is unknown (${hw.ttSmi ? "tt-smi gave no board list" : "tt-smi not on PATH"}); serving cpu only. Name the pools with --pool`,
    );
  }
  return { serve, refused, notes };
}

/** Device node names under `dir` (empty when it does not exist), numeric order. */
export async function listDevices(dir: string): Promise<string[]> {
  try {
    const names = await readdir(dir);
    return names
      .filter((n) => !n.startsWith("."))
      .sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  } catch {
    return [];
  }
}

/** Find an executable on a PATH string. */
export async function findOnPath(name: string, pathEnv: string | undefined): Promise<string | null> {
  for (const dir of (pathEnv ?? "").split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  return null;
}

export interface DetectOptions {
  deviceDir?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Run `tt-smi -ls` and parse it; an error string when it fails. */
export async function queryTtSmi(
  ttSmi: string,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<{ boards: string[] } | { error: string }> {
  try {
    const r = await runHostCommand([ttSmi, "-ls"], {
      env: opts.env ?? process.env,
      timeoutMs: opts.timeoutMs ?? 30_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (r.timedOut) return { error: `tt-smi -ls timed out after ${opts.timeoutMs ?? 30_000} ms` };
    if (r.exitCode !== 0) {
      return {
        error: `tt-smi -ls exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().split("\n").slice(-1)[0] ?? ""}`,
      };
    }
    return { boards: parseTtSmiList(r.stdout) };
  } catch (err) {
    return { error: `tt-smi -ls could not start: ${(err as Error).message}` };
  }
}

/** Look at the host: device nodes, and tt-smi's board list when tt-smi is on PATH. */
export async function detectHardware(opts: DetectOptions = {}): Promise<Hardware> {
  const env = opts.env ?? process.env;
  const deviceDir = opts.deviceDir ?? env.AUTOFIX_DEVICE_DIR ?? DEFAULT_DEVICE_DIR;
  const devices = await listDevices(deviceDir);
  const ttSmi = await findOnPath("tt-smi", env.PATH);
  if (!ttSmi) return { deviceDir, devices, ttSmi: null, boards: null };
  const q = await queryTtSmi(ttSmi, { env, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  if ("error" in q) return { deviceDir, devices, ttSmi, boards: null, ttSmiError: q.error };
  return { deviceDir, devices, ttSmi, boards: q.boards };
}
