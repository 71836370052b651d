import type { StatusStep, StepState } from "./model.js";

/*
 * Changes to the status checklist (model.ts, defaultSteps). Pure: each returns a new list and
 * leaves the one it was given alone.
 */

/** Step `index` is running; `detail`, when given, replaces its detail. */
export function startStep(steps: readonly StatusStep[], index: number, detail?: string): StatusStep[] {
  return steps.map((s, i) =>
    i === index ? { ...s, state: "running", ...(detail !== undefined ? { detail } : {}) } : s,
  );
}

/**
 * Steps still running become `to`, the others stay: "failed" when the job ends without its
 * pipeline's own checklist, "pending" when it goes back to the queue, "done" when a later
 * step takes over.
 */
export function settleSteps(steps: readonly StatusStep[], to: StepState): StatusStep[] {
  return steps.map((s) => (s.state === "running" ? { ...s, state: to } : s));
}

/** The end of a run: running steps are done (or failed), steps never reached are skipped. */
export function endSteps(steps: readonly StatusStep[], ok: boolean): StatusStep[] {
  return steps.map((s) =>
    s.state === "running"
      ? { ...s, state: ok ? "done" : "failed" }
      : s.state === "pending"
        ? { ...s, state: "skipped", detail: "not reached" }
        : s,
  );
}
