import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { type CommandResult, killGroup, reapGroup } from "../shared/process.js";
import { readProc, runTracked } from "./common.js";
import { scrubEnv } from "./env.js";
import {
  assembleExecutor,
  type ExecOptions,
  ExecutorDisposedError,
  type ExecutorFactory,
  type ExecutorSpec,
  type JobExecutor,
} from "./executor.js";

/**
 * The host backend: each command in its own process group on this machine, with the
 * service's environment minus its secrets plus the job's variables. It confines nothing
 * beyond that; the sandbox backends do.
 */

export interface HostExecutorOptions extends ExecutorSpec {
  /** The environment commands start from before scrubbing (default: process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Default SIGTERM to SIGKILL delay. */
  killGraceMs?: number;
}

export function createHostExecutor(o: HostExecutorOptions): JobExecutor {
  const workspace = path.resolve(o.workspace);
  const jobEnv = { ...o.env };
  const groups = new Set<number>();
  let disposed = false;
  const grace = o.killGraceMs ?? 2000;

  const run = async (command: string | readonly string[], opts: ExecOptions = {}): Promise<CommandResult> => {
    if (disposed)
      throw new ExecutorDisposedError(
        `the job's executor was disposed of; not running ${String(command).slice(0, 80)}`,
      );
    // The job's variables win over the service's, and per-command variables over both.
    const env = {
      ...scrubEnv(o.baseEnv ?? process.env, { ...jobEnv, ...(opts.env ?? {}) }),
      // Who started it, for the next start after a kill -9 (removeStaleHostCommands).
      [HOST_OWNER_ENV]: hostOwnerMark(),
    };
    return runTracked(
      command,
      { cwd: opts.cwd ?? workspace, env, killGraceMs: opts.killGraceMs ?? grace },
      opts,
      groups,
    );
  };

  const killAll = async () => {
    const live = [...groups];
    for (const g of live) killGroup(g, "SIGTERM");
    await Promise.all(live.map((g) => reapGroup(g, Math.min(grace, 500))));
  };

  return assembleExecutor({
    kind: "host",
    workspace,
    jobEnv,
    run,
    killAll,
    markDisposed: () => {
      disposed = true;
    },
  });
}

/** The factory the worker and `autofix run` use when no sandbox is configured. */
export function hostExecutorFactory(
  extra: Omit<HostExecutorOptions, keyof ExecutorSpec> = {},
): ExecutorFactory {
  return async (spec) => createHostExecutor({ ...spec, ...extra });
}

/**
 * The variable every command of a host executor starts with: `<pid>:<start>` of the service
 * that ran it (its pid and its start time since boot, so a reused pid is not taken for it).
 * A pid, nothing secret; every process the command starts inherits it, in its group or not.
 */
export const HOST_OWNER_ENV = "AUTOFIX_HOST_OWNER";

let ownMark: string | undefined;
/** This process's owner mark (HOST_OWNER_ENV). */
export function hostOwnerMark(): string {
  if (ownMark === undefined) {
    let start = "0";
    try {
      const stat = readFileSync("/proc/self/stat", "utf8");
      start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "0";
    } catch {
      // no /proc: the pid alone
    }
    ownMark = `${process.pid}:${start}`;
  }
  return ownMark;
}

/** The owner mark in a process's environment (NUL-separated `/proc/<pid>/environ`). Pure. */
export function ownerMarkOf(environ: string): { pid: number; start: number } | null {
  const entry = environ.split("\0").find((e) => e.startsWith(`${HOST_OWNER_ENV}=`));
  const m = entry ? /^(\d+):(\d+)$/.exec(entry.slice(HOST_OWNER_ENV.length + 1)) : null;
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : null;
}

async function ownerAlive(o: { pid: number; start: number }): Promise<boolean> {
  const p = await readProc(o.pid);
  return p !== null && p.state !== "Z" && p.state !== "X" && (o.start === 0 || p.start === o.start);
}

/**
 * What a worker (or `autofix run`) killed with SIGKILL left running on the host: every process
 * whose environment names an owner that is gone, and the process groups they lead (a child
 * that cleared its environment but stayed in its command's group goes with it). Processes of
 * live owners, this process's and its own group are left alone. Returns the pids killed.
 */
export async function removeStaleHostCommands(
  isOwnerAlive: (o: { pid: number; start: number }) => Promise<boolean> = ownerAlive,
  procDir = "/proc",
): Promise<number[]> {
  const killed: number[] = [];
  const verdict = new Map<string, boolean>();
  const ownGroup = (await readProcGroup(process.pid, procDir)) ?? process.pid;
  for (const name of (await readdir(procDir)).filter((n) => /^\d+$/.test(n))) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    const environ = await readFile(path.join(procDir, name, "environ"), "latin1").catch(() => "");
    const owner = ownerMarkOf(environ);
    if (!owner || owner.pid === process.pid) continue;
    const key = `${owner.pid}:${owner.start}`;
    let alive = verdict.get(key);
    if (alive === undefined) {
      alive = await isOwnerAlive(owner);
      verdict.set(key, alive);
    }
    if (alive) continue;
    const group = await readProcGroup(pid, procDir);
    if (group === pid && group !== ownGroup) killGroup(group, "SIGKILL");
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // gone already
    }
  }
  return killed;
}

async function readProcGroup(pid: number, procDir: string): Promise<number | null> {
  try {
    const stat = await readFile(path.join(procDir, String(pid), "stat"), "utf8");
    const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : null;
  } catch {
    return null;
  }
}
