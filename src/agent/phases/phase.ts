import { redact } from "../../shared/redact.js";
import { phaseReason, phaseStatusFor } from "../outcome.js";
import { MINUTE, type RunState } from "../run-state.js";
import { addUsage } from "../spend.js";
import type { ToolContext } from "../tools/index.js";
import {
  type AgentUsage,
  emptyUsage,
  type GateResult,
  type PhaseEndCode,
  type PhaseName,
  type PhaseOutcome,
  type ProgressEvent,
} from "../types.js";

/**
 * One phase over the run state: its deadline, cancel, and the outcome it adds. A phase's body
 * returns how it ended and the value it produced (the reproduction, the fix), so nothing is
 * handed back through shared variables.
 */

export interface PhaseRun<T> {
  code: PhaseEndCode;
  reason: string;
  usage: AgentUsage;
  turns: number;
  gates: GateResult[];
  /** What the phase produced for the result; kept whatever the phase's status. */
  value: T | null;
}

export interface PhaseEnd<T> {
  outcome: PhaseOutcome;
  value: T | null;
}

/** How an exception ends a phase: cancelled, out of time (the phase signal fired) or an error. */
export function endedByError(run: RunState, phaseSignal: AbortSignal, err: unknown): PhaseRun<never> {
  return {
    code: run.jobSignal.aborted ? "cancelled" : phaseSignal.aborted ? "budget_time" : "error",
    reason: redact(`${(err as Error).name}: ${(err as Error).message}`),
    usage: emptyUsage(),
    turns: 0,
    gates: [],
    value: null,
  };
}

/**
 * Run one phase with its deadline; `body` gets the phase's signal (job cancel or deadline)
 * and the deadline. Records the outcome and its usage in the state and emits its progress.
 */
export async function runPhase<T>(
  run: RunState,
  name: PhaseName,
  minutes: number,
  body: (signal: AbortSignal, deadline: number) => Promise<PhaseRun<T>>,
): Promise<PhaseEnd<T>> {
  const { jobSignal, now } = run;
  const t0 = now();
  const deadline = t0 + minutes * MINUTE;
  run.emit({ type: "phase_started", phase: name, budget: { minutes, turns: run.config.budgets.max_turns } });
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error("phase deadline")), Math.max(0, deadline - now()));
  const onJobAbort = () => ctrl.abort(new Error("cancelled"));
  if (jobSignal.aborted) ctrl.abort(new Error("cancelled"));
  else jobSignal.addEventListener("abort", onJobAbort, { once: true });
  let r: PhaseRun<T>;
  try {
    r = await body(ctrl.signal, deadline);
  } catch (err) {
    r = endedByError(run, ctrl.signal, err);
  } finally {
    clearTimeout(timer);
    jobSignal.removeEventListener("abort", onJobAbort);
    // Nothing a phase started outlives it (a background server, a daemon of the model's).
    await run.exec.killAll();
  }
  // A phase that stopped for a reason other than its own verdict because the job was cancelled reads as cancelled.
  if (jobSignal.aborted && r.code !== "gate_passed") {
    r = { ...r, code: "cancelled", reason: `the job was cancelled (${r.reason})` };
  }
  const outcome: PhaseOutcome = {
    phase: name,
    status: phaseStatusFor(r.code),
    code: r.code,
    reason: redact(phaseReason(r.code, r.reason, r.gates)),
    startedAt: new Date(t0).toISOString(),
    durationMs: Math.max(0, now() - t0),
    turns: r.turns,
    usage: r.usage,
    gates: r.gates,
  };
  run.usage = addUsage(run.usage, r.usage);
  run.phases.push(outcome);
  run.emit({ type: "phase_ended", phase: name, outcome });
  return { outcome, value: r.value };
}

/** What every model phase's loop shares: budgets, signals, progress, transcript. */
export function loopSettings(run: RunState, signal: AbortSignal, deadline: number) {
  const b = run.config.budgets;
  const o = run.options;
  return {
    limits: { deadline, maxTurns: b.max_turns, maxTokens: b.max_tokens, maxCostUsd: b.max_cost_usd },
    jobUsageBefore: run.usage,
    jobSignal: run.jobSignal,
    phaseSignal: signal,
    onProgress: (e: ProgressEvent) => run.emit(e),
    transcript: run.transcript,
    now: run.now,
    maxOutputTokens: o.maxOutputTokens ?? 16_000,
    contextTrimTokens: o.contextTrimTokens ?? 100_000,
    maxFinishAttempts: o.maxFinishAttempts ?? 3,
    ...(o.modelOutage ? { modelOutage: o.modelOutage } : {}),
  };
}

/** The tools' context for a phase (the loop adds the phase's signal). */
export function toolContext(run: RunState, protectedPaths: string[]): Omit<ToolContext, "signal"> {
  return {
    workspace: run.workspace,
    commandTimeoutMs: run.commandTimeoutMs,
    executor: run.exec,
    protectedPaths,
    ...run.killGrace,
  };
}
