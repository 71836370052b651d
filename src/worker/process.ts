import {
  groupAlive,
  killGroup,
  type ProcessOptions,
  type ProcessResult,
  runProcess,
} from "../shared/process.js";

/**
 * Commands of the worker itself (git, tt-smi, the card reset): the shared process runner
 * (src/shared/process.ts) with the worker's defaults: the environment given (or the
 * process's), output tails of up to 1 MB, and a rejection when the command cannot start.
 */

export { groupAlive, killGroup };

export type RunCommandOptions = Omit<ProcessOptions, "rejectOnSpawnError" | "headBytes" | "tailBytes"> & {
  /** Maximum bytes of stdout and of stderr kept (the tail). */
  maxOutputBytes?: number;
};

export type CommandResult = ProcessResult;

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

/**
 * Run `cmd`: an argv array (no shell) or a string run by `bash -c`. Resolves with the result
 * whatever the exit code; rejects only when the command cannot be started. When the command
 * ends, processes it left behind in its group are killed too.
 */
export function runCommand(
  cmd: string | readonly string[],
  opts: RunCommandOptions = {},
): Promise<CommandResult> {
  const { maxOutputBytes, ...rest } = opts;
  return runProcess(cmd, {
    ...rest,
    headBytes: 0,
    tailBytes: maxOutputBytes ?? DEFAULT_MAX_OUTPUT,
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
