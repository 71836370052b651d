/**
 * How a run ends: one vocabulary for the agent's result, the report, the job's final state and
 * the CLI's exit code. Words for people live here (labels); exit codes in src/cli/command.ts;
 * the status comment's headlines in src/status/render.ts.
 */
export const OUTCOMES = ["succeeded", "partial", "failed", "cancelled", "timed_out"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The word a report or a terminal shows for an outcome. */
export const OUTCOME_LABEL: Readonly<Record<Outcome, string>> = {
  succeeded: "Success",
  partial: "Partial",
  failed: "Failed",
  cancelled: "Cancelled",
  timed_out: "Timed out",
};
