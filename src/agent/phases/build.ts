import { redact } from "../../shared/redact.js";
import { changedPaths } from "../git.js";
import { lastLines } from "../output.js";
import { MINUTE, type RunState } from "../run-state.js";
import { emptyUsage } from "../types.js";
import { runPhase } from "./phase.js";

/**
 * The repository's build command (`commands.build`), before the model phases; skipped when
 * empty. Returns false when it did not pass: the run ends there.
 */
export async function build(run: RunState): Promise<boolean> {
  const { config, workspace } = run;
  const command = config.commands.build;
  if (!command.trim()) return true;
  const minutes = config.budgets.build_minutes;
  const { outcome } = await runPhase<never>(run, "build", minutes, async (signal) => {
    const r = await run.exec.run(command, {
      cwd: workspace,
      timeoutMs: minutes * MINUTE,
      signal,
      ...run.killGrace,
    });
    run.transcript.push({
      phase: "build",
      turn: 0,
      role: "tool",
      kind: "tool_result",
      name: "build",
      isError: r.exitCode !== 0,
      content: redact(lastLines(r.output, 60)),
    });
    const empty = { usage: emptyUsage(), turns: 0, gates: [], value: null };
    if (r.cancelled)
      return {
        code: run.jobSignal.aborted ? "cancelled" : "budget_time",
        reason: "the build was stopped",
        ...empty,
      };
    if (r.timedOut)
      return { code: "budget_time", reason: `the build ran past its ${minutes} min budget`, ...empty };
    if (r.exitCode !== 0) {
      return {
        code: "command_failed",
        reason: `the build command exited ${r.exitCode ?? r.signal}: ${redact(lastLines(r.output, 5, 600))}`,
        ...empty,
      };
    }
    return { code: "gate_passed", reason: `built in ${(r.durationMs / 1000).toFixed(1)} s`, ...empty };
  });
  return outcome.status === "passed";
}

/**
 * Paths already changed against the base when the agent starts (what the build left behind,
 * untracked and not ignored): not the agent's doing, so never reverted nor committed.
 */
export async function leftBehind(run: RunState): Promise<ReadonlySet<string>> {
  return new Set(await changedPaths(run.exec, run.options.baseSha));
}
