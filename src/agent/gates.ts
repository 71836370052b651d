import type { RepoConfig } from "../config/repo-config.js";
import type { CommandResult, ExecOptions } from "../sandbox/executor.js";
import { redact } from "../shared/redact.js";
import { lastLines } from "./output.js";
import type { GateResult, GateRun } from "./types.js";

/**
 * The gates: what the harness itself checks by running the reproduction command, never by
 * the model's word. Plans and decisions are pure; `runGate` is the small shell around them.
 */

export type GateName = "reproduce" | "fix";

export interface GatePlan {
  gate: GateName;
  deterministic: boolean;
  /** Most runs to make. */
  runs: number;
  /** Stop early once the outcome cannot change. */
  stopOn: "pass" | "failure";
}

type Stability = RepoConfig["stability"];

/**
 * Reproduce on the base commit. Deterministic: every one of `deterministic_failures` runs must
 * fail (a pass settles it: stop). Non-deterministic: at least one failure in `stress_runs`.
 */
export function reproducePlan(deterministic: boolean, s: Stability): GatePlan {
  return deterministic
    ? { gate: "reproduce", deterministic, runs: s.deterministic_failures, stopOn: "pass" }
    : { gate: "reproduce", deterministic, runs: s.stress_runs, stopOn: "failure" };
}

/** After the fix: N consecutive passes (2 deterministic, 5 non-deterministic by default). */
export function fixPlan(deterministic: boolean, s: Stability): GatePlan {
  return {
    gate: "fix",
    deterministic,
    runs: deterministic ? s.deterministic_passes : s.nondeterministic_passes,
    stopOn: "failure",
  };
}

/** Has the outcome been settled by the runs so far? */
export function gateSettled(plan: GatePlan, runs: ReadonlyArray<Pick<GateRun, "passed">>): boolean {
  if (runs.length >= plan.runs) return true;
  return plan.stopOn === "pass" ? runs.some((r) => r.passed) : runs.some((r) => !r.passed);
}

function describeRun(r: Pick<GateRun, "run" | "exitCode" | "timedOut" | "signal">): string {
  if (r.timedOut) return `run ${r.run} timed out`;
  if (r.exitCode === null) return `run ${r.run} was killed by ${r.signal ?? "a signal"}`;
  return `run ${r.run} exited ${r.exitCode}`;
}

/** The verdict over a set of runs (and, for the fix gate, the hash comparison). Pure. */
export function decideGate(
  plan: GatePlan,
  runs: ReadonlyArray<GateRun>,
  hash?: { frozen: string; current: string },
): { passed: boolean; reason: string } {
  if (hash && hash.frozen !== hash.current) {
    return {
      passed: false,
      reason:
        "the reproduction test changed since phase 1 (content hash differs); a fix must make the frozen test pass, not change it",
    };
  }
  const failures = runs.filter((r) => !r.passed).length;
  const passes = runs.length - failures;
  if (plan.gate === "reproduce") {
    if (plan.deterministic) {
      if (runs.length >= plan.runs && failures === runs.length) {
        return {
          passed: true,
          reason: `failed ${failures}/${plan.runs} runs on the base commit, as required`,
        };
      }
      const pass = runs.find((r) => r.passed);
      return {
        passed: false,
        reason: `did not fail every run on the base commit: ${failures} of ${runs.length} failed${pass ? ` (run ${pass.run} passed)` : ""}; needed ${plan.runs}/${plan.runs}`,
      };
    }
    if (failures > 0) {
      const first = runs.find((r) => !r.passed)!;
      return {
        passed: true,
        reason: `failed ${failures} of ${runs.length} stress runs on the base commit (first: ${describeRun(first)})`,
      };
    }
    return {
      passed: false,
      reason: `passed all ${runs.length} stress runs on the base commit; never reproduced`,
    };
  }
  if (runs.length >= plan.runs && passes === runs.length) {
    return { passed: true, reason: `passed ${passes}/${plan.runs} consecutive runs` };
  }
  const bad = runs.find((r) => !r.passed);
  return {
    passed: false,
    reason: `passed ${passes} of the ${plan.runs} consecutive runs required${bad ? `; ${describeRun(bad)}` : ""}`,
  };
}

/** Turn a command result into a gate run record (output tail redacted). Pure. */
function toGateRun(gate: GateName, run: number, r: CommandResult): GateRun {
  return {
    gate,
    run,
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    durationMs: r.durationMs,
    passed: r.exitCode === 0 && !r.timedOut && !r.cancelled,
    outputTail: redact(lastLines(r.output, 30)),
  };
}

export type CommandRunner = (command: string, opts: ExecOptions) => Promise<CommandResult>;

export interface GateRunOptions {
  run: CommandRunner;
  command: string;
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onRun?: (run: GateRun) => void;
  /** For the fix gate: the frozen hash and how to compute the current one. */
  hash?: { frozen: string; current: () => Promise<string> };
}

/** Run a gate. Returns `cancelled` when the signal fired mid-way (the runs so far are kept). */
export async function runGate(
  plan: GatePlan,
  opts: GateRunOptions,
): Promise<{ result: GateResult; cancelled: boolean }> {
  const runs: GateRun[] = [];
  let current: string | null = null;
  if (opts.hash) {
    current = await opts.hash.current();
    const verdict = decideGate(plan, runs, { frozen: opts.hash.frozen, current });
    if (current !== opts.hash.frozen) {
      return {
        result: { gate: plan.gate, passed: false, reason: verdict.reason, runs, testHash: current },
        cancelled: false,
      };
    }
  }
  while (!gateSettled(plan, runs)) {
    const r = await opts.run(opts.command, {
      cwd: opts.cwd,
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (r.cancelled) {
      return {
        result: {
          gate: plan.gate,
          passed: false,
          reason: "cancelled during the gate runs",
          runs,
          testHash: current,
        },
        cancelled: true,
      };
    }
    const run = toGateRun(plan.gate, runs.length + 1, r);
    runs.push(run);
    opts.onRun?.(run);
  }
  // A run may have modified the test (a script that rewrites itself): check again afterwards.
  if (opts.hash) {
    current = await opts.hash.current();
    const v = decideGate(plan, runs, { frozen: opts.hash.frozen, current });
    return { result: { gate: plan.gate, ...v, runs, testHash: current }, cancelled: false };
  }
  const v = decideGate(plan, runs);
  return { result: { gate: plan.gate, ...v, runs, testHash: current }, cancelled: false };
}
