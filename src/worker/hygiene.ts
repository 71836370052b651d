import { readdir, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type CommandResult, describeFailure, runHostCommand } from "../shared/process.js";

/**
 * Card hygiene between jobs: kill processes still holding a device, reset the cards, and
 * check the host is healthy before taking the next job.
 */

/**
 * True when a /proc fd link target points into the device folder; with `cards`, only at
 * those cards' nodes (so jobs on other cards of the host are left alone). Pure.
 */
export function isDeviceLink(target: string, deviceDir: string, cards?: readonly string[]): boolean {
  const dir = resolve(deviceDir);
  const t = resolve(target);
  if (cards) return cards.some((c) => t === join(dir, c));
  return t === dir || t.startsWith(`${dir}/`);
}

/**
 * Pids whose open file descriptors point into `deviceDir`, found by scanning
 * `<procRoot>/<pid>/fd/*` (procRoot is /proc in production, a fake folder in tests).
 * Processes we may not inspect are skipped.
 */
export async function findDeviceHolders(
  deviceDir: string,
  opts: { procRoot?: string; excludePids?: readonly number[]; cards?: readonly string[] } = {},
): Promise<number[]> {
  const procRoot = opts.procRoot ?? "/proc";
  const exclude = new Set([process.pid, ...(opts.excludePids ?? [])]);
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch {
    return [];
  }
  const holders: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (exclude.has(pid)) continue;
    const fdDir = join(procRoot, name, "fd");
    let fds: string[];
    try {
      fds = await readdir(fdDir);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = await readlink(join(fdDir, fd));
      } catch {
        continue;
      }
      if (isDeviceLink(target, deviceDir, opts.cards)) {
        holders.push(pid);
        break;
      }
    }
  }
  return holders;
}

export type KillFn = (pid: number, signal: NodeJS.Signals) => void;

/** SIGTERM the holders, then SIGKILL those still holding the device after `graceMs`. */
export async function killDeviceHolders(
  deviceDir: string,
  opts: { procRoot?: string; graceMs?: number; kill?: KillFn; cards?: readonly string[] } = {},
): Promise<number[]> {
  const kill: KillFn = opts.kill ?? ((pid, sig) => process.kill(pid, sig));
  const find = () =>
    findDeviceHolders(deviceDir, {
      ...(opts.procRoot ? { procRoot: opts.procRoot } : {}),
      ...(opts.cards ? { cards: opts.cards } : {}),
    });
  const holders = await find();
  if (holders.length === 0) return [];
  for (const pid of holders) safeKill(kill, pid, "SIGTERM");
  await new Promise((r) => setTimeout(r, opts.graceMs ?? 2_000));
  for (const pid of await find()) safeKill(kill, pid, "SIGKILL");
  return holders;
}

function safeKill(kill: KillFn, pid: number, sig: NodeJS.Signals): void {
  try {
    kill(pid, sig);
  } catch {
    // Already gone, or not ours to kill.
  }
}

/**
 * The reset command for a job and where it runs: the host's setting (the operator's) wins and
 * runs on the host; the repository's `commands.reset` comes from the job's commit, so it is
 * the repository's code and runs where the job's commands run, in its sandbox. Empty: none.
 */
export function chooseResetCommand(
  hostCommand: string | undefined,
  repoCommand: string | undefined,
): { command: string; where: "host" | "job" } {
  const host = (hostCommand ?? "").trim();
  if (host) return { command: host, where: "host" };
  return { command: (repoCommand ?? "").trim(), where: "job" };
}

/** How a reset command is run: on the host, or through the job's executor. */
export type ResetRunner = (
  command: string,
  opts: { env: Record<string, string>; timeoutMs: number; signal?: AbortSignal },
) => Promise<CommandResult>;

const onHost =
  (base: NodeJS.ProcessEnv): ResetRunner =>
  (command, o) =>
    runHostCommand(command, {
      env: { ...base, ...o.env },
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });

/** Run the reset command; `tt-smi -r` sometimes fails once, so a failure is retried once. */
export async function resetCards(
  command: string,
  opts: {
    env?: NodeJS.ProcessEnv;
    /** The job's variables (AUTOFIX_CARDS, TT_VISIBLE_DEVICES), on top of the runner's. */
    jobEnv?: Record<string, string>;
    runner?: ResetRunner;
    timeoutMs?: number;
    signal?: AbortSignal;
  } = {},
): Promise<{ ok: true; attempts: number } | { ok: false; error: string }> {
  const run = opts.runner ?? onHost(opts.env ?? process.env);
  let last: CommandResult | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    last = await run(command, {
      env: opts.jobEnv ?? {},
      timeoutMs: opts.timeoutMs ?? 120_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (last.exitCode === 0) return { ok: true, attempts: attempt };
    if (last.cancelled) break;
  }
  return { ok: false, error: describeFailure(`reset command "${command}"`, last!) };
}

export interface HealthInput {
  deviceDir: string;
  /** Cards the served card pools need at least. 0: cpu only, nothing to check. */
  cardsNeeded: number;
  ttSmi: string | null;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Null when healthy, else why not: device nodes missing, or tt-smi not answering. */
export async function checkHealth(input: HealthInput): Promise<string | null> {
  if (input.cardsNeeded === 0) return null;
  let devices: string[];
  try {
    devices = (await readdir(input.deviceDir)).filter((n) => !n.startsWith("."));
  } catch {
    devices = [];
  }
  if (devices.length < input.cardsNeeded) {
    return `${input.deviceDir} has ${devices.length} device node${devices.length === 1 ? "" : "s"}, ${input.cardsNeeded} needed`;
  }
  if (input.ttSmi) {
    const r = await runHostCommand([input.ttSmi, "-ls"], {
      env: input.env ?? process.env,
      timeoutMs: input.timeoutMs ?? 30_000,
    });
    if (r.exitCode !== 0) return describeFailure("tt-smi -ls", r);
  }
  return null;
}

/**
 * Hands out card indices to jobs: a job of an n-card pool gets n cards, or waits until they
 * are free. Pools on one host share the cards, so a T3K job and N300 jobs never overlap.
 */
export class CardAllocator {
  #free: string[];
  #waiters: {
    n: number;
    resolve: (cards: string[]) => void;
    reject: (e: Error) => void;
    signal?: AbortSignal;
  }[] = [];

  constructor(readonly devices: readonly string[]) {
    this.#free = [...devices];
  }

  get free(): readonly string[] {
    return this.#free;
  }

  acquire(n: number, signal?: AbortSignal): Promise<string[]> {
    // A forced pool on a host with fewer cards gets what there is.
    if (n === 0 || this.devices.length === 0) return Promise.resolve([]);
    n = Math.min(n, this.devices.length);
    if (this.#waiters.length === 0 && this.#free.length >= n) return Promise.resolve(this.#free.splice(0, n));
    return new Promise((resolvePromise, reject) => {
      const w = { n, resolve: resolvePromise, reject, ...(signal ? { signal } : {}) };
      this.#waiters.push(w);
      signal?.addEventListener(
        "abort",
        () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) {
            this.#waiters.splice(i, 1);
            reject(new Error("aborted while waiting for cards"));
          }
        },
        { once: true },
      );
    });
  }

  release(cards: readonly string[]): void {
    this.#free.push(...cards);
    this.#free.sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
    while (this.#waiters.length > 0 && this.#free.length >= this.#waiters[0]!.n) {
      const w = this.#waiters.shift()!;
      w.resolve(this.#free.splice(0, w.n));
    }
  }
}
