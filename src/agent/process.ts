import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { isSecretEnvName } from "../shared/redact.js";
import { HeadTail } from "./output.js";

/**
 * Commands for the agent and the gates. Each runs under `bash -c` in its own process group
 * with a scrubbed environment; a timeout, the job's AbortSignal or the end of the leader
 * kills the whole group (SIGTERM, then SIGKILL after a grace). Never synchronous: a blocked
 * event loop stalls the worker's BullMQ lock renewal.
 */

/** Names dropped from every command's environment, besides anything isSecretEnvName() flags. */
export function isScrubbedEnvName(name: string): boolean {
  return (
    isSecretEnvName(name) ||
    /^PRIVATE_KEY/i.test(name) ||
    /^ANTHROPIC_/i.test(name) ||
    /^(REDIS_URL|WEBHOOK_PROXY_URL|GITHUB_APP_.*|APP_ID)$/i.test(name) ||
    /(token|secret|password|passwd|api_?key|private_?key|credentials?)$/i.test(name)
  );
}

/** The environment commands see: the harness's, minus every secret. Pure. */
export function scrubEnv(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !isScrubbedEnvName(k)) out[k] = v;
  }
  // Nothing may wait for a password on a terminal that is not there.
  out.GIT_TERMINAL_PROMPT = "0";
  out.GIT_ASKPASS = "/bin/false";
  for (const [k, v] of Object.entries(extra)) if (!isScrubbedEnvName(k)) out[k] = v;
  return out;
}

export interface RunOptions {
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Delay between SIGTERM and SIGKILL. */
  graceMs?: number;
  /** Defaults to scrubEnv(process.env). */
  env?: Record<string, string>;
  headBytes?: number;
  tailBytes?: number;
}

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** Interleaved stdout and stderr, head and tail kept. */
  output: string;
  cutBytes: number;
  /** Process group id (equal to the leader's pid), for tests and diagnostics. */
  pgid: number | undefined;
}

function killGroup(pgid: number | undefined, sig: NodeJS.Signals): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM what is left of a group, SIGKILL it after the grace, and wait until it is gone. */
async function reapGroup(pgid: number | undefined, graceMs: number): Promise<void> {
  if (!(await groupAlive(pgid))) return;
  killGroup(pgid, "SIGTERM");
  const soft = Date.now() + graceMs;
  while ((await groupAlive(pgid)) && Date.now() < soft) await sleep(25);
  if (!(await groupAlive(pgid))) return;
  killGroup(pgid, "SIGKILL");
  const hard = Date.now() + 2000;
  while ((await groupAlive(pgid)) && Date.now() < hard) await sleep(25);
}

/** State and process group of a pid from /proc (Linux), or null. */
async function procStat(pid: string): Promise<{ state: string; pgrp: number } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: rest[0] ?? "", pgrp: Number(rest[2]) };
  } catch {
    return null;
  }
}

/**
 * Is any process of the group still running? Signal 0 probes without killing, but it also
 * finds zombies, which nobody may reap for a while in a container; on Linux a /proc scan
 * tells them apart.
 */
async function groupAlive(pgid: number | undefined): Promise<boolean> {
  if (!pgid) return false;
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  for (const pid of pids) {
    const st = await procStat(pid);
    if (st && st.pgrp === pgid && st.state !== "Z" && st.state !== "X") return true;
  }
  return false;
}

export function runCommand(command: string, opts: RunOptions): Promise<CommandResult> {
  const started = Date.now();
  const graceMs = opts.graceMs ?? 2000;
  const capture = new HeadTail(opts.headBytes, opts.tailBytes);
  return new Promise((resolve) => {
    if (opts.signal?.aborted) {
      resolve({
        exitCode: null,
        signal: null,
        timedOut: false,
        cancelled: true,
        durationMs: 0,
        output: "",
        cutBytes: 0,
        pgid: undefined,
      });
      return;
    }
    const child = spawn("bash", ["-c", command], {
      cwd: opts.cwd,
      env: opts.env ?? scrubEnv(process.env),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pgid = child.pid;
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: string | null } | undefined;

    const terminate = () => {
      killGroup(pgid, "SIGTERM");
      killTimer ??= setTimeout(() => killGroup(pgid, "SIGKILL"), graceMs);
    };
    const onAbort = () => {
      cancelled = true;
      terminate();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, opts.timeoutMs);
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout?.on("data", (d: Buffer) => capture.push(d));
    child.stderr?.on("data", (d: Buffer) => capture.push(d));

    const finish = async (spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      // Background children left behind by the leader die with it: the tree is gone when we return.
      await reapGroup(pgid, killTimer ? Math.min(graceMs, 200) : graceMs);
      if (spawnError) capture.push(`\n[could not start command: ${spawnError.message}]\n`);
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        cancelled,
        durationMs: Date.now() - started,
        output: capture.text(),
        cutBytes: capture.cutBytes,
        pgid,
      });
    };

    child.on("error", (err) => void finish(err));
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      // Output pipes may be held open by a background child: do not wait for them forever.
      closeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        void finish();
      }, 500);
    });
    child.on("close", () => void finish());
  });
}

/** Quote one word for bash. Pure. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
