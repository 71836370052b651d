import { type GatePlan, runGate } from "../gates.js";
import { hashTestPath } from "../hash.js";
import type { RunState } from "../run-state.js";
import type { GateResult, GateRun } from "../types.js";

/** A gate check in a run: every run recorded in the state and reported as progress. */
export async function checkGate(
  run: RunState,
  plan: GatePlan,
  command: string,
  signal: AbortSignal,
  hash?: { frozen: string; abs: string },
): Promise<{ result: GateResult; cancelled: boolean }> {
  const r = await runGate(plan, {
    // Every gate run starts from a sandbox with nothing left running: no process the model
    // started can answer for the test, or change the workspace while it runs.
    run: async (cmd, opts) => {
      await run.exec.killAll();
      return run.exec.run(cmd, { ...opts, ...run.killGrace });
    },
    command,
    cwd: run.workspace,
    timeoutMs: run.commandTimeoutMs,
    signal,
    onRun: (gr) => {
      run.gateRuns.push(gr);
      run.emit({ type: "gate_run", phase: plan.gate, run: gr });
    },
    ...(hash ? { hash: { frozen: hash.frozen, current: () => hashTestPath(hash.abs) } } : {}),
  });
  run.emit({ type: "gate_result", phase: plan.gate, result: r.result });
  return r;
}

/** What the model is told about the gate runs of a refused finish. */
export function formatRuns(runs: readonly GateRun[]): string {
  return runs
    .map(
      (r) =>
        `run ${r.run}: ${r.timedOut ? "timed out" : `exit ${r.exitCode ?? r.signal}`} in ${(r.durationMs / 1000).toFixed(1)} s\n${r.outputTail
          .split("\n")
          .slice(-10)
          .join("\n")}`,
    )
    .join("\n\n");
}
