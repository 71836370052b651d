import { z } from "zod";
import type { CommandResult } from "../../sandbox/executor.js";
import { defineTool } from "./define.js";

/** run_command: `bash -c` through the job's executor, bounded by the tool's and the phase's limits. */

/** How a command result reads to the model. Pure. */
export function formatCommandResult(r: CommandResult, timeoutMs: number): string {
  const status = r.cancelled
    ? "cancelled"
    : r.timedOut
      ? `timed out after ${Math.round(timeoutMs / 1000)} s; the process tree was killed`
      : r.exitCode === null
        ? `killed by ${r.signal}`
        : `exit code ${r.exitCode}`;
  return `${status} (${(r.durationMs / 1000).toFixed(1)} s)\n${r.output || "(no output)"}`;
}

export const runCommandTool = defineTool({
  name: "run_command",
  description:
    "Run a shell command (bash -c) in the repository root with a time limit. Returns the exit code and the output (long output keeps its beginning and end).",
  schema: z.strictObject({
    command: z.string().min(1).describe("Run with bash -c in the repository root"),
    timeout_seconds: z.number().int().min(1).max(86_400).optional().describe("Time limit for this command"),
  }),
  async run(input, ctx) {
    const timeoutMs = Math.min(
      ctx.commandTimeoutMs,
      (input.timeout_seconds ?? Number.POSITIVE_INFINITY) * 1000,
    );
    const r = await ctx.executor.run(input.command, {
      cwd: ctx.workspace,
      timeoutMs,
      signal: ctx.signal,
      ...(ctx.killGraceMs !== undefined ? { killGraceMs: ctx.killGraceMs } : {}),
    });
    return { content: formatCommandResult(r, timeoutMs), isError: r.timedOut || r.cancelled };
  },
});
