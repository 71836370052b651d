import { OUTCOMES, type Outcome } from "../contracts/outcome.js";

/** The states a job's status comment can show. Every job ends in one of FINAL_STATES. */
export const JOB_STATES = ["queued", "running", ...OUTCOMES] as const;
export type JobState = (typeof JOB_STATES)[number];
/** A job's final state is the shared outcome (src/contracts/outcome.ts). */
export const FINAL_STATES: readonly JobState[] = OUTCOMES;

export function isFinal(state: JobState): state is Outcome {
  return FINAL_STATES.includes(state);
}

export type StepState = "pending" | "running" | "done" | "failed" | "skipped";

export interface StatusStep {
  name: string;
  state: StepState;
  /** One line: "2/2 failed on base", "budget 5 min", ... */
  detail?: string;
}

export interface StatusView {
  state: JobState;
  /** owner/repo#N: the target the comment belongs to (used for the hidden marker). */
  target: string;
  jobId?: string;
  pool: string;
  /** Who asked (mentioned with @); absent for CI-triggered jobs so nobody is pinged by a robot. */
  requestedBy?: string;
  /** Why the job exists: "/autofix comment", "label autofix", "3 consecutive failures of ...". */
  trigger: string;
  queuePosition?: number;
  steps?: StatusStep[];
  elapsedMs?: number;
  spend?: { tokens: number; costUsd: number };
  /** Free text under the header: the reason for a failure, what to do next. */
  message?: string;
  links?: { pullRequest?: string; report?: string; logs?: string; job?: string };
  /** A collapsed block appended at the end (the report summary). */
  details?: { summary: string; body: string };
  /** Replaces the state's headline (HEADLINE in render.ts) when it would mislead; final states only. */
  headline?: string;
  updatedAt: Date;
}

/** The default checklist: the phases a job walks through. */
export function defaultSteps(skipReproduce = false): StatusStep[] {
  return [
    { name: "Prepare workspace and logs", state: "pending" },
    {
      name: "Reproduce the failure",
      state: skipReproduce ? "skipped" : "pending",
      ...(skipReproduce ? { detail: "existing test given" } : {}),
    },
    { name: "Fix and prove it", state: "pending" },
    { name: "Open draft PR and report", state: "pending" },
  ];
}
