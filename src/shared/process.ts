import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { HeadTail } from "./head-tail.js";

/**
 * The one way this service runs a command: in its own process group, so a timeout, a cancel
 * (AbortSignal) or the end of the leader kills the whole tree (SIGTERM, then SIGKILL after a
 * grace), and the call returns only when the group is gone. Never synchronous: a blocked
 * event loop stalls the worker's BullMQ lock renewal. A job's commands reach it through the job's
 * executor (src/sandbox); the service's own commands (git on the mirror, tt-smi, the card reset)
 * through runHostCommand below.
 */

export interface ProcessOptions {
  cwd?: string;
  /** The complete environment (nothing is inherited unless passed). Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Kill the tree after this long; 0 or absent: no limit. */
  timeoutMs?: number;
  /** Delay between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Text written to stdin, which is then closed. */
  input?: string;
  /** Bytes kept from the start and the end of each output (stdout, stderr, interleaved). */
  headBytes?: number;
  tailBytes?: number;
  /** Each chunk as it arrives, for live logs. */
  onOutput?: (stream: "stdout" | "stderr", chunk: string) => void;
  /** Reject when the command cannot be started (default: resolve with a note in the output). */
  rejectOnSpawnError?: boolean;
  /** Told the leader's pid (the process group id) as soon as it exists. */
  onSpawn?: (pid: number) => void;
}

export interface ProcessResult {
  /** Exit code, or null when the process ended by a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they came, head and tail kept. */
  output: string;
  /** Bytes of the interleaved output left out. */
  cutBytes: number;
  timedOut: boolean;
  /** Ended because `signal` was aborted. */
  cancelled: boolean;
  durationMs: number;
  /** Leader pid, which is also the process group id. */
  pid: number | undefined;
}

/** Is a process alive (signal 0; EPERM means it exists but belongs to someone else)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Send a signal to a whole process group; false when it is gone already. */
export function killGroup(pgid: number | undefined, sig: NodeJS.Signals = "SIGKILL"): boolean {
  if (!pgid) return false;
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
export async function groupAlive(pgid: number | undefined): Promise<boolean> {
  if (!pgid) return false;
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
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

/** SIGTERM what is left of a group, SIGKILL it after the grace, and wait until it is gone. */
export async function reapGroup(pgid: number | undefined, graceMs: number): Promise<void> {
  if (!(await groupAlive(pgid))) return;
  killGroup(pgid, "SIGTERM");
  const soft = Date.now() + graceMs;
  while ((await groupAlive(pgid)) && Date.now() < soft) await sleep(25);
  if (!(await groupAlive(pgid))) return;
  killGroup(pgid, "SIGKILL");
  const hard = Date.now() + 2000;
  while ((await groupAlive(pgid)) && Date.now() < hard) await sleep(25);
}

/** Run an argv array (no shell) or a string under `bash -c`. */
export function runProcess(
  cmd: string | readonly string[],
  opts: ProcessOptions = {},
): Promise<ProcessResult> {
  const [file, ...args] = typeof cmd === "string" ? ["bash", "-c", cmd] : cmd;
  if (!file) return Promise.reject(new Error("runProcess: empty command"));
  const started = Date.now();
  const graceMs = opts.killGraceMs ?? 2000;
  const head = opts.headBytes ?? 8 * 1024;
  const tail = opts.tailBytes ?? 16 * 1024;
  const out = new HeadTail(head, tail);
  const err = new HeadTail(head, tail);
  const both = new HeadTail(head, tail);
  const result = (over: Partial<ProcessResult>): ProcessResult => ({
    exitCode: null,
    signal: null,
    stdout: out.text(),
    stderr: err.text(),
    output: both.text(),
    cutBytes: both.cutBytes,
    timedOut: false,
    cancelled: false,
    durationMs: Date.now() - started,
    pid: undefined,
    ...over,
  });
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve(result({ cancelled: true, durationMs: 0 }));
      return;
    }
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    });
    const pgid = child.pid;
    if (pgid) opts.onSpawn?.(pgid);
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const terminate = () => {
      killGroup(pgid, "SIGTERM");
      killTimer ??= setTimeout(() => killGroup(pgid, "SIGKILL"), graceMs);
    };
    const onAbort = () => {
      cancelled = true;
      terminate();
    };
    const timer =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            terminate();
          }, opts.timeoutMs)
        : undefined;
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    const take = (stream: "stdout" | "stderr", capture: HeadTail) => (d: Buffer) => {
      capture.push(d);
      both.push(d);
      opts.onOutput?.(stream, d.toString("utf8"));
    };
    child.stdout?.on("data", take("stdout", out));
    child.stderr?.on("data", take("stderr", err));
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input);
    }

    const finish = async (spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (spawnError && opts.rejectOnSpawnError) {
        reject(spawnError);
        return;
      }
      // Background children left behind by the leader die with it: the tree is gone when we return.
      await reapGroup(pgid, killTimer ? Math.min(graceMs, 200) : graceMs);
      if (spawnError) both.push(`\n[could not start command: ${spawnError.message}]\n`);
      resolve(
        result({
          exitCode: exit?.code ?? null,
          signal: exit?.signal ?? null,
          timedOut,
          cancelled,
          pid: pgid,
        }),
      );
    };

    child.on("error", (e) => void finish(e));
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

export type CommandResult = ProcessResult;

export type HostCommandOptions = Omit<ProcessOptions, "rejectOnSpawnError" | "headBytes" | "tailBytes"> & {
  /** Maximum bytes of stdout and of stderr kept (the tail). */
  maxOutputBytes?: number;
};

const HOST_MAX_OUTPUT = 1024 * 1024;

/**
 * A command of the service itself (git on the mirror, tt-smi, the card reset): runProcess with
 * output tails of up to 1 MB, and a rejection when the command cannot be started. Resolves
 * whatever the exit code.
 */
export function runHostCommand(
  cmd: string | readonly string[],
  opts: HostCommandOptions = {},
): Promise<CommandResult> {
  const { maxOutputBytes, ...rest } = opts;
  return runProcess(cmd, {
    ...rest,
    headBytes: 0,
    tailBytes: maxOutputBytes ?? HOST_MAX_OUTPUT,
    rejectOnSpawnError: true,
  });
}

/** A one-line description of a failed command for errors and comments. */
export function describeFailure(what: string, r: CommandResult): string {
  if (r.cancelled) return `${what}: cancelled`;
  if (r.timedOut) return `${what}: timed out after ${Math.round(r.durationMs / 1000)} s`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" | ");
  const how = r.exitCode !== null ? `exit code ${r.exitCode}` : `signal ${r.signal}`;
  return `${what}: ${how}${tail ? `: ${tail}` : ""}`;
}
