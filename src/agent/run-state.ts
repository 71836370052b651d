import type Anthropic from "@anthropic-ai/sdk";
import { DEFAULT_MODEL } from "../config/env.js";
import type { RepoConfig } from "../config/repo-config.js";
import type { FixRequest } from "../contracts/fix-request.js";
import type { JobExecutor } from "../sandbox/executor.js";
import { redact } from "../shared/redact.js";
import type { ModelOutageOptions } from "./loop.js";
import { overallReason, overallStatus } from "./outcome.js";
import {
  type AgentResult,
  type AgentUsage,
  emptyUsage,
  type FixSummary,
  type GateRun,
  type PhaseOutcome,
  type ProgressEvent,
  type ProgressListener,
  type Reproduction,
  type TranscriptEntry,
} from "./types.js";

/**
 * One agent run's state, shared by the phases (src/agent/phases/): what the caller gave, and
 * what the result is made of as the phases add to it. `finishResult` turns it into the
 * redacted AgentResult.
 */

export interface RunFixAgentOptions {
  /** The checkout, at `baseSha`, clean (the executor's workspace). */
  baseSha: string;
  /** Deterministic branch name given by the caller (`autofix/<slug>`). Not pushed here. */
  branch: string;
  request: FixRequest;
  config: RepoConfig;
  /** Already-triaged log excerpt (untrusted; fenced as data in the prompts). */
  failureContext: string;
  client: Anthropic;
  /** The caller passes the settings' AUTOFIX_MODEL; DEFAULT_MODEL when absent. */
  model?: string;
  signal?: AbortSignal;
  /**
   * Aborted when the worker starts shutting down: the run stops before its next phase
   * (status cancelled, reason naming the shutdown) so the job can go back to the queue.
   */
  drain?: AbortSignal;
  onProgress?: ProgressListener;
  now?: () => number;
  /** Command for an existing test when it cannot be derived from the path. */
  reproCommand?: string;
  /** Where phase 1 writes its test folder (default `autofix-tests/<slug>`). */
  testDir?: string;
  /** Folder holding `prompts/` (default: the package root). */
  promptsRoot?: string;
  /** Output tokens asked for per turn. */
  maxOutputTokens?: number;
  /** Trim old tool outputs past this context size in tokens. */
  contextTrimTokens?: number;
  /** SIGTERM to SIGKILL delay when killing a command's process tree. */
  killGraceMs?: number;
  /** Refused finishes (failed gates) per phase before giving up. */
  maxFinishAttempts?: number;
  /** How a model outage is waited out (loop.ts, ModelOutageOptions); default 5 min, real timers. */
  modelOutage?: ModelOutageOptions;
  /** Where every command of the run goes: tools, the build and the harness's git. */
  executor: JobExecutor;
  /**
   * Makes the executor a gate check runs in: one per gate check, for a fresh checkout of the
   * gated commit in a folder next to the workspace (phases/checkout.ts), disposed of after the
   * check. The worker builds it from the job's ExecutorFactory (same cards, env, sandbox).
   * Absent: a host executor with the job's env when `executor` is the host one; a sandboxed
   * executor without it runs the gate checkout below its own workspace (weaker: the test can
   * see the workspace there).
   */
  gateExecutor?: (dir: string) => Promise<JobExecutor>;
}

export const MINUTE = 60_000;

export interface RunState {
  readonly options: RunFixAgentOptions;
  readonly exec: JobExecutor;
  /** The executor's workspace. */
  readonly workspace: string;
  readonly config: RepoConfig;
  readonly model: string;
  readonly now: () => number;
  readonly startedAt: number;
  /** The job's signal (cancel); each phase derives its own from it. */
  readonly jobSignal: AbortSignal;
  /**
   * The object stores the workspace borrowed from when the run started (read at setup,
   * before any command of the model): the gate checkouts borrow from them.
   */
  trustedStores: string[];
  /** Upper bound for one command the agent or a gate runs. */
  readonly commandTimeoutMs: number;
  /** `{ killGraceMs }` when the caller gave one; spread into every command's options. */
  readonly killGrace: { killGraceMs?: number };
  readonly transcript: TranscriptEntry[];
  readonly phases: PhaseOutcome[];
  readonly gateRuns: GateRun[];
  /** The job's usage over the phases that have ended. */
  usage: AgentUsage;
  reproduction: Reproduction | null;
  fix: FixSummary | null;
  commits: { repro: string | null; fix: string | null; gated: string | null; changedFiles: string[] };
  /** Progress to the caller; a listener that throws is ignored. */
  emit(e: ProgressEvent): void;
}

export function createRunState(o: RunFixAgentOptions): RunState {
  const now = o.now ?? Date.now;
  return {
    options: o,
    exec: o.executor,
    workspace: o.executor.workspace,
    config: o.config,
    model: o.model ?? DEFAULT_MODEL,
    now,
    startedAt: now(),
    jobSignal: o.signal ?? new AbortController().signal,
    trustedStores: [],
    commandTimeoutMs: o.config.budgets.command_timeout_minutes * MINUTE,
    killGrace: o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {},
    transcript: [],
    phases: [],
    gateRuns: [],
    usage: emptyUsage(),
    reproduction: null,
    fix: null,
    commits: { repro: null, fix: null, gated: null, changedFiles: [] },
    emit(e) {
      try {
        o.onProgress?.(e);
      } catch {
        // Progress is best effort.
      }
    },
  };
}

/** The run's result: the status from the phases unless overridden, everything redacted. */
export function finishResult(
  run: RunState,
  statusOverride?: { status: AgentResult["status"]; reason: string },
): AgentResult {
  const status = statusOverride?.status ?? overallStatus(run.phases);
  const result: AgentResult = {
    status,
    reason: statusOverride?.reason ?? overallReason(status, run.phases),
    phases: run.phases,
    reproduction: run.reproduction,
    gateRuns: run.gateRuns,
    fix: run.fix,
    git: {
      branch: run.options.branch,
      baseSha: run.options.baseSha,
      reproCommitSha: run.commits.repro,
      fixCommitSha: run.commits.fix,
      gatedCommitSha: run.commits.gated,
      changedFiles: run.commits.changedFiles,
    },
    usage: run.usage,
    model: run.model,
    startedAt: new Date(run.startedAt).toISOString(),
    durationMs: Math.max(0, run.now() - run.startedAt),
    transcript: run.transcript,
  };
  // Everything that leaves is redacted, including what the model wrote about itself.
  return redactDeepPlain(result);
}

function redactDeepPlain<T>(v: T): T {
  if (typeof v === "string") return redact(v) as T;
  if (Array.isArray(v)) return v.map(redactDeepPlain) as T;
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeepPlain(x)])) as T;
  }
  return v;
}
