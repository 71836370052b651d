import type { ProgressEvent } from "../agent/index.js";
import { defaultSteps, endSteps, type StatusStep, settleSteps, startStep } from "../status/index.js";

/**
 * Turns agent progress into the status checklist: build and log intake are "Prepare", then
 * Reproduce, Fix, and the PR step the pipeline drives itself. Pure state machine.
 */
export class ChecklistTracker {
  steps: StatusStep[];
  message = "";

  constructor(skipReproduce: boolean) {
    this.steps = startStep(defaultSteps(skipReproduce), 0);
  }

  /** Copy on write: a checklist already handed to onProgress is never changed under it. */
  #set(i: number, patch: Partial<StatusStep>): void {
    this.steps = this.steps.map((s, j) => (j === i ? { ...s, ...patch } : s));
  }

  #index(phase: string): number {
    return phase === "build" ? 0 : phase === "reproduce" ? 1 : 2;
  }

  apply(e: ProgressEvent): void {
    switch (e.type) {
      case "phase_started": {
        const i = this.#index(e.phase);
        for (let j = 0; j < i; j++)
          if (this.steps[j]!.state === "running" || this.steps[j]!.state === "pending")
            this.#set(j, { state: j === 1 && this.steps[1]!.state === "pending" ? "skipped" : "done" });
        if (this.steps[i]!.state !== "skipped")
          this.#set(i, {
            state: "running",
            detail: `budget ${e.budget.minutes} min, ${e.budget.turns} turns`,
          });
        this.message =
          e.phase === "build"
            ? "Building"
            : e.phase === "reproduce"
              ? "Writing a reproduction"
              : "Looking for the root cause and a fix";
        break;
      }
      case "gate_run":
        this.message = `${e.phase === "reproduce" ? "Checking the reproduction on the base commit" : "Proving the fix"}: run ${e.run.run} ${e.run.passed ? "passed" : "failed"}`;
        break;
      case "gate_result": {
        const i = this.#index(e.phase);
        const runs = `${e.result.runs.filter((r) => r.passed).length}/${e.result.runs.length} passed`;
        this.#set(i, { detail: `${e.result.passed ? "gate passed" : "gate refused"}: ${runs}` });
        break;
      }
      case "phase_ended": {
        const i = this.#index(e.phase);
        const ok = e.outcome.status === "passed" || e.outcome.status === "skipped";
        this.#set(i, {
          state: ok ? (e.outcome.status === "skipped" ? "skipped" : "done") : "failed",
          detail: e.outcome.reason.slice(0, 140),
        });
        break;
      }
      default:
        break;
    }
  }

  publishing(): void {
    this.steps = startStep(settleSteps(this.steps, "done"), 3);
    this.message = "Pushing the branch and opening the draft PR";
  }

  finish(ok: boolean, detail?: string): void {
    this.steps = endSteps(this.steps, ok);
    if (detail) this.#set(3, { detail });
  }
}
