import type { JobExecutor } from "../../sandbox/executor.js";
import { redact } from "../../shared/redact.js";
import { decideGate, type GatePlan, runGate } from "../gates.js";
import { testObjectHash } from "../hash.js";
import { lastLines } from "../output.js";
import { MINUTE, type RunState } from "../run-state.js";
import type { GateResult, GateRun } from "../types.js";
import { createGateCheckout, escapingSymlinks, type GateCheckout } from "./checkout.js";

/**
 * A gate check in a run: a fresh checkout of exactly the gated commit (phases/checkout.ts),
 * the repository's build there when it has one, then the runs, in the checkout's own
 * executor. Every run is recorded in the state and reported as progress.
 */
export interface GateTarget {
  /** The commit whose tree the gate runs. */
  commit: string;
  /** The commit the gated one builds on (its new symbolic links are checked). */
  from?: string;
  /** The frozen test as a git object id, and its path in the commit (fix gate). */
  hash?: { frozen: string; path: string };
  /**
   * A check over the gated commit before anything runs (the fix's test neighbourhood): a
   * reason refuses the commit without a run.
   */
  precheck?: (checkout: GateCheckout) => Promise<string | null>;
}

export async function checkGate(
  run: RunState,
  plan: GatePlan,
  command: string,
  signal: AbortSignal,
  target: GateTarget,
): Promise<{ result: GateResult; cancelled: boolean }> {
  const refuse = (reason: string, testHash: string | null = null) => {
    const result: GateResult = {
      gate: plan.gate,
      passed: false,
      reason,
      runs: [],
      testHash,
      commit: target.commit,
    };
    run.emit({ type: "gate_result", phase: plan.gate, result });
    return { result, cancelled: false };
  };
  // Nothing the model started may touch the objects while they are copied.
  await run.exec.killAll();
  let checkout: GateCheckout;
  try {
    checkout = await createGateCheckout({
      exec: run.exec,
      trustedStores: run.trustedStores,
      base: run.options.baseSha,
      commit: target.commit,
      ...(run.options.gateExecutor ? { gateExecutor: run.options.gateExecutor } : {}),
      signal,
    });
  } catch (err) {
    if (signal.aborted) return { ...refuse("cancelled while preparing the gate checkout"), cancelled: true };
    return refuse(redact(`could not check out the commit for the gate: ${(err as Error).message}`));
  }
  try {
    if (target.hash) {
      const current = (await testObjectHash(checkout.git, target.commit, target.hash.path)) ?? "missing";
      if (current !== target.hash.frozen) {
        // decideGate words the refusal; no run is made.
        const v = decideGate(plan, [], { frozen: target.hash.frozen, current });
        return refuse(v.reason, current);
      }
    }
    if (target.from) {
      const links = await escapingSymlinks(checkout, target.from, target.commit);
      if (links.length > 0) {
        return refuse(
          `the commit adds symbolic links that point outside the repository (${links.slice(0, 5).join(", ")}); a clean clone cannot follow them`,
          target.hash?.frozen ?? null,
        );
      }
    }
    const refusal = await target.precheck?.(checkout);
    if (refusal) return refuse(refusal, target.hash?.frozen ?? null);
    let exec: JobExecutor;
    try {
      exec = await checkout.start();
    } catch (err) {
      return refuse(redact(`could not start the gate's sandbox: ${(err as Error).message}`));
    }
    const build = run.config.commands.build;
    if (build.trim()) {
      const b = await exec.run(build, {
        cwd: checkout.dir,
        env: checkout.env,
        timeoutMs: run.config.budgets.build_minutes * MINUTE,
        signal,
        ...run.killGrace,
      });
      if (b.cancelled) return { ...refuse("cancelled during the gate checkout's build"), cancelled: true };
      if (b.exitCode !== 0 || b.timedOut) {
        return refuse(
          redact(
            `the build (commands.build) failed in the clean checkout of ${target.commit.slice(0, 12)}: ${lastLines(b.output, 5, 600)}`,
          ),
        );
      }
    }
    const r = await runGate(plan, {
      // Every gate run starts with nothing left running in the gate's sandbox.
      run: async (cmd, opts) => {
        await exec.killAll();
        return exec.run(cmd, { ...opts, env: checkout.env, ...run.killGrace });
      },
      command,
      cwd: checkout.dir,
      timeoutMs: run.commandTimeoutMs,
      signal,
      onRun: (gr) => {
        run.gateRuns.push(gr);
        run.emit({ type: "gate_run", phase: plan.gate, run: gr });
      },
      // A run may rewrite the test in the checkout: the tree is what counts, and it is the commit's.
      ...(target.hash
        ? { hash: { frozen: target.hash.frozen, current: async () => target.hash!.frozen } }
        : {}),
    });
    const result: GateResult = {
      ...r.result,
      testHash: target.hash ? target.hash.frozen : r.result.testHash,
      commit: target.commit,
    };
    run.emit({ type: "gate_result", phase: plan.gate, result });
    return { result, cancelled: r.cancelled };
  } finally {
    await checkout.dispose();
  }
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
