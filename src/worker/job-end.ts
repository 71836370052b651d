import { redact } from "../shared/redact.js";
import { settleSteps } from "../status/checklist.js";
import type { JobState, StatusView } from "../status/model.js";
import type { FinalState, JobOutcome } from "./types.js";

/**
 * How an attempt ends: the README's lifecycle table ("what happened | comment | queue") as
 * pure functions. The processor (lifecycle.ts) gathers the facts, asks `classifyEnd`, and
 * carries the answer out: the last status view, the metrics, and what BullMQ is told.
 */

/** Why a job's signal was aborted. */
export type AbortKind = "cancel" | "shutdown" | "timeout";

export class JobAbort extends Error {
  constructor(readonly kind: AbortKind) {
    super(
      kind === "cancel"
        ? "cancelled by request"
        : kind === "shutdown"
          ? "worker shutting down"
          : "job timed out",
    );
    this.name = "JobAbort";
  }
}

/** What the job returns to BullMQ when it completes. */
export interface JobResult {
  state: FinalState;
  message: string;
  links?: JobOutcome["links"];
}

/** The facts at the end of an attempt. */
export interface EndInput {
  /** The pipeline's outcome when it returned; what was thrown (by any step) when not. */
  ran: { outcome: JobOutcome } | { error: unknown };
  /** Set when the job's signal was aborted (cancel, shutdown deadline, timeout). */
  abortKind: AbortKind | null;
  /** 1-based. */
  attempt: number;
  maxAttempts: number;
  /** The worker has started shutting down (SIGTERM): a pipeline that throws now stopped for it. */
  draining: boolean;
  /** The error says "do not retry" (BullMQ's UnrecoverableError). */
  unrecoverable: boolean;
}

export interface EndSettings {
  workerName: string;
  /** The worker's limit for one attempt, for the timed-out message. */
  jobTimeoutMs: number;
}

/** Which row of the lifecycle table an attempt ended in. */
export type EndCase = "returned" | "cancelled" | "timed_out" | "shutdown" | "retry" | "failed";

interface EndCommon {
  case: EndCase;
  /** What the status comment shows last: a final state, or queued when the job runs again. */
  state: JobState;
  message: string;
  /** Steps still running become this (unless the pipeline's own checklist is shown). */
  settle: "failed" | "pending";
}

/**
 * What to tell the queue: complete with a result; throw so BullMQ retries (with backoff) or
 * fails the job; or move it back to waiting without using an attempt.
 */
export type JobEnd = EndCommon &
  (
    | { queue: "complete"; result: JobResult }
    | { queue: "retry" | "fail"; error: { name: string; message: string } }
    | { queue: "wait" }
  );

function errorText(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}

/** An error BullMQ must not retry. */
export function isUnrecoverable(err: unknown): boolean {
  return err instanceof Error && err.name === "UnrecoverableError";
}

/**
 * Classify the end of an attempt. Pure. An abort wins over whatever the pipeline did after it;
 * a pipeline that throws while the worker drains stopped at a phase boundary for the shutdown.
 */
export function classifyEnd(input: EndInput, settings: EndSettings): JobEnd {
  const { ran, attempt, maxAttempts } = input;
  const kind: AbortKind | null =
    input.abortKind ??
    ("error" in ran
      ? ran.error instanceof JobAbort
        ? ran.error.kind
        : input.draining
          ? "shutdown"
          : null
      : null);
  if (kind === "cancel") {
    return {
      case: "cancelled",
      state: "cancelled",
      message: "Cancelled by request; running commands were stopped.",
      settle: "failed",
      queue: "complete",
      result: { state: "cancelled", message: "cancelled by request" },
    };
  }
  if (kind === "timeout") {
    const message = `Timed out: the job ran longer than ${Math.round(settings.jobTimeoutMs / 60_000)} min, the worker's limit.`;
    return {
      case: "timed_out",
      state: "timed_out",
      message,
      settle: "failed",
      queue: "complete",
      result: { state: "timed_out", message },
    };
  }
  if (kind === "shutdown") {
    return {
      case: "shutdown",
      state: "queued",
      message: shutdownMessage(settings.workerName),
      settle: "pending",
      queue: "wait",
    };
  }
  if ("outcome" in ran) {
    const { outcome } = ran;
    return {
      case: "returned",
      state: outcome.state,
      message: outcome.message,
      settle: "pending",
      queue: "complete",
      result: {
        state: outcome.state,
        message: redact(outcome.message),
        ...(outcome.links ? { links: outcome.links } : {}),
      },
    };
  }
  // BullMQ keeps the message in Redis in clear text: only the redacted one leaves, with the
  // error's name (BullMQ reads it to tell an UnrecoverableError).
  const reason = errorText(ran.error);
  const error = { name: ran.error instanceof Error ? ran.error.name : "Error", message: reason };
  if (attempt < maxAttempts && !input.unrecoverable) {
    return {
      case: "retry",
      state: "queued",
      message: `Attempt ${attempt}/${maxAttempts} failed: ${reason}. Queued for retry ${attempt + 1}/${maxAttempts}.`,
      settle: "pending",
      queue: "retry",
      error,
    };
  }
  return {
    case: "failed",
    state: "failed",
    message: `Failed${maxAttempts > 1 && !input.unrecoverable ? ` after ${maxAttempts} attempts` : ""}: ${reason}`,
    settle: "failed",
    queue: "fail",
    error,
  };
}

/**
 * The last status patch for an end. Pure. A returned outcome brings its own checklist, spend,
 * links and report; every other end settles the steps still running.
 */
export function finalPatch(end: JobEnd, view: StatusView, ran: EndInput["ran"]): Partial<StatusView> {
  if (end.case === "returned" && "outcome" in ran) {
    const { outcome } = ran;
    return {
      state: end.state,
      message: end.message,
      steps: outcome.steps ?? settleSteps(view.steps ?? [], "pending"),
      ...(outcome.spend ? { spend: outcome.spend } : {}),
      ...(outcome.links ? { links: { ...view.links, ...outcome.links } } : {}),
      ...(outcome.details ? { details: outcome.details } : {}),
      ...(outcome.headline ? { headline: outcome.headline } : {}),
    };
  }
  return { state: end.state, message: end.message, steps: settleSteps(view.steps ?? [], end.settle) };
}

/** The status of a job a worker handed back at its shutdown deadline (SIGTERM). Pure. */
export function shutdownMessage(workerName: string): string {
  return `Worker ${workerName} was shut down before the job finished; the job is back in the queue and starts again on the next free worker (no attempt used).`;
}

/**
 * What a worker that requeues a job without using an attempt leaves on it (as the job's
 * BullMQ progress), so the next worker says why it runs again: a shutdown hand-over, or a
 * failed hardware check. `stalledCount` is the job's stall count at the time: a stall after
 * the hand-over is told as a stall.
 */
export interface RequeueMark {
  requeued: "shutdown" | "unhealthy";
  by: string;
  stalledCount: number;
}

/** The mark in a job's progress, when it is one. Pure. */
export function requeueMarkOf(progress: unknown): RequeueMark | null {
  if (!progress || typeof progress !== "object") return null;
  const p = progress as Record<string, unknown>;
  if (p.requeued !== "shutdown" && p.requeued !== "unhealthy") return null;
  if (typeof p.by !== "string" || typeof p.stalledCount !== "number") return null;
  return { requeued: p.requeued, by: redact(p.by).slice(0, 200), stalledCount: p.stalledCount };
}

/** Why this attempt runs a job another worker already started: from BullMQ's counters and the mark. Pure. */
export function resumeOf(job: {
  stalledCounter: number;
  attemptsStarted: number;
  attempt: number;
  progress: unknown;
}): RunningInput["resumed"] {
  const mark = requeueMarkOf(job.progress);
  if (mark && mark.stalledCount === job.stalledCounter)
    return mark.requeued === "shutdown" ? { handedOverBy: mark.by } : false;
  return job.stalledCounter > 0 || job.attemptsStarted > job.attempt;
}

interface RunningInput {
  workerName: string;
  cards: string[];
  attempt: number;
  maxAttempts: number;
  /**
   * true: the job was taken over from a worker that stopped responding; `handedOverBy`: a
   * worker shut down and put it back in the queue.
   */
  resumed: boolean | { handedOverBy: string };
}

/** The first edit of an attempt, on the worker that took it. Pure. */
export function runningMessage(input: RunningInput): string {
  const r = input.resumed;
  return [
    `Running on ${input.workerName}${input.cards.length ? ` (cards ${input.cards.join(", ")})` : ""}.`,
    input.attempt > 1 ? `Attempt ${input.attempt}/${input.maxAttempts}.` : "",
    r === true
      ? "Resumed after the previous worker stopped responding."
      : r
        ? `Resumed after worker ${r.handedOverBy} was shut down and put the job back in the queue.`
        : "",
  ]
    .filter(Boolean)
    .join(" ");
}

/** The host failed its hardware check before the job started: it goes back to the queue. */
export function unhealthyMessage(workerName: string, reason: string): string {
  return `Worker ${workerName} failed its hardware check (${reason}); the job went back to the queue for a healthy host.`;
}

/** A job that stalled more often than allowed: BullMQ failed it, no worker runs it again. */
export function stalledMessage(failedReason: string | undefined): string {
  return `Failed: the worker running this job stopped responding too many times (${redact(failedReason ?? "stalled")}). Comment \`/autofix retry\` to run it again.`;
}

/** A queued job whose data does not validate: it fails permanently, unrun. */
export function invalidJobMessage(why: string): string {
  return `Failed: the queued job is not valid, so it was not run. ${why}`;
}
