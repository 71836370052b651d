import type { JobEnvironment } from "../contracts/fix-job.js";
import type { CommandResult } from "../shared/process.js";

/**
 * The one way a job runs a command: the agent's run_command and file searches, every gate
 * run, the build, the harness's own git in the workspace. One executor per job, created by
 * the worker (or `autofix run`) around the job's workspace and environment (its cards), and
 * disposed of when the job ends. Backends: the host (src/sandbox/host.ts); sandboxes plug in
 * behind the same port.
 */

export type { CommandResult };

export interface ExecOptions {
  /** Absolute folder to run in: the workspace or a folder below it. Default: the workspace. */
  cwd?: string;
  /** Kill the command's whole tree after this long; 0 or absent: no limit. */
  timeoutMs?: number;
  /** Cancel (the phase's or the job's signal): the whole tree is killed. */
  signal?: AbortSignal;
  /** Variables for this command only, on top of the job's environment. */
  env?: Record<string, string>;
  /** Text written to stdin, which is then closed. */
  input?: string;
  /** Bytes kept from the start and the end of the output. */
  headBytes?: number;
  tailBytes?: number;
  /** Delay between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

export type ExecutorKind = "host" | "bwrap" | "container";

export interface JobExecutor {
  readonly kind: ExecutorKind;
  /** The workspace as the service sees it (host path). */
  readonly workspace: string;
  /** The job's own variables every command gets (TT_VISIBLE_DEVICES, ...). */
  readonly jobEnv: Readonly<Record<string, string>>;
  /**
   * What the job's commands run in, for the status comment and the report: `image`, `image
   * source`, `workdir`, `environment notes`. Absent on backends that add nothing.
   */
  readonly details?: Readonly<Record<string, string>>;
  /** Run an argv array (no shell) or a string under `bash -c`. Resolves whatever the exit code. */
  run(command: string | readonly string[], opts?: ExecOptions): Promise<CommandResult>;
  /** Kill every process the job started so far (phase ends, before gates, commits and pushes). */
  killAll(): Promise<void>;
  /** Kill everything and release the backend; later runs are refused. Idempotent. */
  dispose(): Promise<void>;
}

/** What an executor is made for: one job's workspace, environment and cards. */
export interface ExecutorSpec {
  workspace: string;
  /** The job's variables (TT_VISIBLE_DEVICES pins the job's cards). */
  env: Record<string, string>;
  /** Card device node names the job holds. */
  cards: string[];
  /** A name for the job (logs, sandbox names). */
  jobId: string;
  /** Host folders the job may read but not write (the object store its repository borrows). */
  readOnlyPaths?: string[];
  /** The pool the job runs on (per-pool images). */
  pool?: string;
  /** `owner/name` of the job's repository (per-repository network opt-in). */
  repository?: string;
  /**
   * The environment the job asks for (the CI job's container or autofix.yml): image, env,
   * options, workdir. The container backend takes the image only when the worker allows it.
   */
  environment?: JobEnvironment;
  /**
   * Host folders bound read-write (the repository's build cache: a ccache folder), at
   * `target` inside (default: the same path). Never shared across repositories or
   * installations: the worker keys them (src/worker/workspace.ts, buildCacheDir).
   */
  cacheMounts?: CacheMount[];
}

/** A read-write bind of a cache folder into the sandbox. */
export interface CacheMount {
  source: string;
  /** Absolute path inside (default: `source`). */
  target?: string;
}

export type ExecutorFactory = (spec: ExecutorSpec) => Promise<JobExecutor>;

/** The job's variables for a set of cards. Pure. */
export function cardEnv(cards: readonly string[]): Record<string, string> {
  return cards.length > 0 ? { TT_VISIBLE_DEVICES: cards.join(",") } : {};
}

/**
 * A backend's executor from its parts: `dispose` marks it disposed (the backend's `run` refuses
 * from then on) and ends what runs, through `release` (default: killAll).
 */
export function assembleExecutor(parts: {
  kind: ExecutorKind;
  workspace: string;
  jobEnv: Readonly<Record<string, string>>;
  run: JobExecutor["run"];
  killAll: () => Promise<void>;
  markDisposed: () => void;
  release?: () => Promise<void>;
  details?: Record<string, string>;
}): JobExecutor {
  const { kind, workspace, jobEnv, run, killAll } = parts;
  return {
    kind,
    workspace,
    jobEnv,
    ...(parts.details ? { details: parts.details } : {}),
    run,
    killAll,
    async dispose() {
      parts.markDisposed();
      await (parts.release ?? killAll)();
    },
  };
}

export class ExecutorDisposedError extends Error {
  override name = "ExecutorDisposedError";
}
