import { z } from "zod";
import { OUTCOMES, type Outcome } from "../contracts/outcome.js";

/**
 * The structured outcome of one agent run. The worker renders it into the status comment and
 * the PR body; the local CLI prints it. Every string in it has been redacted.
 */

/** The agent's status is the shared outcome (src/contracts/outcome.ts). */
export const AGENT_STATUSES = OUTCOMES;
export type AgentStatus = Outcome;

export const PHASE_NAMES = ["build", "reproduce", "fix"] as const;
export type PhaseName = (typeof PHASE_NAMES)[number];

export const PHASE_STATUSES = ["passed", "failed", "skipped", "timed_out", "cancelled"] as const;
export type PhaseStatus = (typeof PHASE_STATUSES)[number];

/** Why a phase ended: one machine-readable code plus a sentence for people. */
export const PHASE_END_CODES = [
  "gate_passed",
  "gate_failed",
  "skipped",
  "budget_time",
  "budget_turns",
  "budget_tokens",
  "budget_cost",
  "model_stopped",
  "model_error",
  "invalid_test",
  "no_changes",
  "cancelled",
  "command_failed",
  "error",
] as const;
export type PhaseEndCode = (typeof PHASE_END_CODES)[number];

export const usageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
  costUsd: z.number().nonnegative(),
  turns: z.number().int().nonnegative(),
});
export type AgentUsage = z.infer<typeof usageSchema>;

export const gateRunSchema = z.object({
  gate: z.enum(["reproduce", "fix"]),
  /** 1-based run number within this gate check. */
  run: z.number().int().positive(),
  exitCode: z.number().int().nullable(),
  /** Killed by a signal, a timeout or a cancel. */
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  durationMs: z.number().nonnegative(),
  /** The run counts as a pass (exit code 0) or a failure. */
  passed: z.boolean(),
  /** Last lines of the output, redacted. */
  outputTail: z.string(),
});
export type GateRun = z.infer<typeof gateRunSchema>;

export const gateResultSchema = z.object({
  gate: z.enum(["reproduce", "fix"]),
  passed: z.boolean(),
  reason: z.string(),
  runs: z.array(gateRunSchema),
  /** Reproduction hash at the time of the check (fix gate: compared with the frozen one). */
  testHash: z.string().nullable(),
  /** The commit whose tree the check ran, in a fresh checkout (absent in older results). */
  commit: z.string().nullable().optional(),
});
export type GateResult = z.infer<typeof gateResultSchema>;

export const phaseOutcomeSchema = z.object({
  phase: z.enum(PHASE_NAMES),
  status: z.enum(PHASE_STATUSES),
  code: z.enum(PHASE_END_CODES),
  reason: z.string(),
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  turns: z.number().int().nonnegative(),
  usage: usageSchema,
  /** Every gate check made during the phase (the last one decides). */
  gates: z.array(gateResultSchema),
});
export type PhaseOutcome = z.infer<typeof phaseOutcomeSchema>;

export const transcriptEntrySchema = z.object({
  phase: z.enum(PHASE_NAMES),
  turn: z.number().int().nonnegative(),
  role: z.enum(["system", "user", "assistant", "tool"]),
  kind: z.enum(["text", "tool_use", "tool_result", "note"]),
  name: z.string().optional(),
  isError: z.boolean().optional(),
  content: z.string(),
});
export type TranscriptEntry = z.infer<typeof transcriptEntrySchema>;

export const reproductionSchema = z.object({
  /** Test folder (phase 1) or existing test path, relative to the workspace. */
  path: z.string(),
  command: z.string(),
  /**
   * The test as a git object, frozen after phase 1: `tree:<id>` of the test folder in the
   * reproduction commit (`blob:<id>` for an existing test file in the base).
   */
  hash: z.string(),
  failureMode: z.string(),
  /** The test came from the request (`existing-test-path`) rather than phase 1. */
  existing: z.boolean(),
});
export type Reproduction = z.infer<typeof reproductionSchema>;

export const fixSummarySchema = z.object({
  summary: z.string(),
  rootCause: z.string(),
  changes: z.string(),
  performance: z.string(),
});
export type FixSummary = z.infer<typeof fixSummarySchema>;

export const agentResultSchema = z.object({
  status: z.enum(AGENT_STATUSES),
  /** One sentence: why the run ended this way. */
  reason: z.string(),
  phases: z.array(phaseOutcomeSchema),
  reproduction: reproductionSchema.nullable(),
  gateRuns: z.array(gateRunSchema),
  fix: fixSummarySchema.nullable(),
  git: z.object({
    branch: z.string(),
    baseSha: z.string(),
    /** Commit holding only the reproduction test (null when an existing test was used). */
    reproCommitSha: z.string().nullable(),
    /** Tip of `branch` after the fix (null when no fix was accepted). */
    fixCommitSha: z.string().nullable(),
    /**
     * The commit the fix gate ran: the fix commit itself, or (test not in the PR) the same
     * change on top of the repro commit, whose tree is the fix commit's plus the frozen test.
     */
    gatedCommitSha: z.string().nullable().optional(),
    /** Source files changed by the fix, excluding the test folder. */
    changedFiles: z.array(z.string()),
  }),
  usage: usageSchema,
  model: z.string(),
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  transcript: z.array(transcriptEntrySchema),
});
export type AgentResult = z.infer<typeof agentResultSchema>;

/** Progress for the status comment and the CLI. Listeners must be quick; errors are ignored. */
export type ProgressEvent =
  | { type: "phase_started"; phase: PhaseName; budget: { minutes: number; turns: number } }
  | { type: "phase_ended"; phase: PhaseName; outcome: PhaseOutcome }
  | { type: "turn"; phase: PhaseName; turn: number; maxTurns: number }
  | { type: "tool"; phase: PhaseName; name: string; isError: boolean }
  | { type: "gate_run"; phase: PhaseName; run: GateRun }
  | { type: "gate_result"; phase: PhaseName; result: GateResult }
  | { type: "spend"; phase: PhaseName; usage: AgentUsage; total: AgentUsage }
  /** The Messages API is failing (an outage): the loop waits `retryInMs`, then tries again. */
  | { type: "model_wait"; phase: PhaseName; attempt: number; retryInMs: number; error: string };

export type ProgressListener = (event: ProgressEvent) => void;

export const emptyUsage = (): AgentUsage => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
  turns: 0,
});
