import { build, leftBehind } from "./phases/build.js";
import { fix } from "./phases/fix.js";
import { reproduce } from "./phases/reproduce.js";
import { setup } from "./phases/setup.js";
import { createRunState, finishResult, type RunFixAgentOptions } from "./run-state.js";
import type { AgentResult } from "./types.js";

export { AgentSetupError } from "./phases/setup.js";
export type { RunFixAgentOptions } from "./run-state.js";

/**
 * Run the phases (build, reproduce, fix) in a prepared workspace and return a structured,
 * redacted result. Never throws for job-level problems: they end in a failed result.
 * Each step adds to one run state (run-state.ts); a step that does not pass ends the run.
 */
export async function runFixAgent(o: RunFixAgentOptions): Promise<AgentResult> {
  const run = createRunState(o);
  const drained = (next: string) =>
    finishResult(run, { status: "cancelled", reason: `${DRAINED}: stopped before the ${next} phase` });

  const ready = await setup(run);
  if (!ready.ok) return finishResult(run, { status: "failed", reason: ready.reason });
  const { prompts } = ready;

  if (o.drain?.aborted) return drained("build");
  if (!(await build(run))) return finishResult(run);
  const preexisting = await leftBehind(run);

  if (o.drain?.aborted) return drained("reproduce");
  const reproduction = await reproduce(run, { prompts, preexisting });
  if (!reproduction) return finishResult(run);

  if (o.drain?.aborted) return drained("fix");
  await fix(run, { prompts, preexisting, reproduction });
  return finishResult(run);
}

/** The start of the reason of a run that stopped at a phase boundary for a worker shutdown. */
export const DRAINED = "the worker is shutting down";
