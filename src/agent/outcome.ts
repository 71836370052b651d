import { shellQuote } from "../shared/shell.js";
import type { AgentStatus, GateResult, PhaseEndCode, PhaseOutcome, PhaseStatus } from "./types.js";

/** Pure decisions about outcomes: phase status, overall status, derived commands, names. */

export function phaseStatusFor(code: PhaseEndCode): PhaseStatus {
  switch (code) {
    case "gate_passed":
      return "passed";
    case "skipped":
      return "skipped";
    case "cancelled":
      return "cancelled";
    case "budget_time":
      return "timed_out";
    default:
      return "failed";
  }
}

/**
 * A phase's reason for people: the loop's end, completed by the last gate verdict when the
 * model stopped or ran out of budget after a refused finish.
 */
export function phaseReason(code: PhaseEndCode, reason: string, gates: readonly GateResult[]): string {
  const last = gates.at(-1);
  if (!last || last.passed || code === "gate_failed" || code === "gate_passed") return reason;
  return `${reason}; last gate check: ${last.reason}`;
}

/**
 * The run's status. Cancelled wins; a fix that passed its gate is a success; a phase that ran
 * out of wall time makes it timed_out; a proven reproduction without an accepted fix is
 * partial (the test is evidence worth keeping); anything else failed.
 */
export function overallStatus(phases: readonly PhaseOutcome[]): AgentStatus {
  if (phases.some((p) => p.status === "cancelled")) return "cancelled";
  const fix = phases.find((p) => p.phase === "fix");
  if (fix?.status === "passed") return "succeeded";
  if (phases.at(-1)?.status === "timed_out") return "timed_out";
  const repro = phases.find((p) => p.phase === "reproduce");
  if (repro?.status === "passed") return "partial";
  return "failed";
}

export function overallReason(status: AgentStatus, phases: readonly PhaseOutcome[]): string {
  const last = phases.at(-1);
  if (status === "succeeded") return "the reproduction failed on the base commit and passes with the fix";
  if (!last) return "nothing ran";
  return `${last.phase} phase ${last.status.replace("_", " ")}: ${last.reason}`;
}

/**
 * The command that runs an existing test, from its path: `bash` for shell scripts, pytest for
 * Python, `run_test.sh` inside a folder. Returns null when it cannot tell. Pure.
 */
export function deriveReproCommand(testPath: string, isDirectory: boolean): string | null {
  const q = shellQuote(testPath);
  if (isDirectory) return `bash ${shellQuote(`${testPath.replace(/\/+$/, "")}/run_test.sh`)}`;
  if (/\.(sh|bash)$/.test(testPath)) return `bash ${q}`;
  if (/\.py$/.test(testPath)) return `python -m pytest -x -q ${q}`;
  if (/\.(mjs|cjs|js)$/.test(testPath)) return `node ${q}`;
  return null;
}

/** The last path segment of the branch, for folder names: `autofix/gather-timeout` -> `gather-timeout`. */
export function slugOfBranch(branch: string): string {
  const last = branch.split("/").filter(Boolean).at(-1) ?? "repro";
  return last.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "") || "repro";
}
