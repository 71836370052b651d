import path from "node:path";
import { type CommandResult, killGroup, reapGroup } from "../shared/process.js";
import { runTracked } from "./common.js";
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
    const env = scrubEnv(o.baseEnv ?? process.env, { ...jobEnv, ...(opts.env ?? {}) });
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
