import { UnrecoverableError } from "bullmq";
import { describe, expect, it } from "vitest";
import { defaultSteps, type StatusView } from "../../src/status/model.js";
import {
  type AbortKind,
  classifyEnd,
  type EndInput,
  finalPatch,
  invalidJobMessage,
  isUnrecoverable,
  JobAbort,
  type JobEnd,
  resumeOf,
  runningMessage,
  stalledMessage,
  unhealthyMessage,
} from "../../src/worker/job-end.js";
import type { JobOutcome } from "../../src/worker/types.js";

const settings = { workerName: "tt-host-1:42", jobTimeoutMs: 90 * 60_000 };

function input(over: Partial<EndInput> = {}): EndInput {
  return {
    ran: { error: new Error("model API unreachable") },
    abortKind: null,
    attempt: 1,
    maxAttempts: 3,
    draining: false,
    unrecoverable: false,
    ...over,
  };
}

const outcome = (state: JobOutcome["state"], message = `pipeline said ${state}`): JobOutcome => ({
  state,
  message,
});

/** The part of an end the README's table names: the comment, and what the queue does. */
function row(e: JobEnd) {
  return {
    state: e.state,
    message: e.message,
    queue: e.queue,
    ...(e.queue === "complete" ? { result: e.result } : {}),
    ...(e.queue === "retry" || e.queue === "fail" ? { error: e.error } : {}),
  };
}

describe("the lifecycle table: how an attempt ends", () => {
  it("pipeline returns: its state and message | completed", () => {
    for (const state of ["succeeded", "partial", "failed", "cancelled", "timed_out"] as const) {
      const e = classifyEnd(input({ ran: { outcome: outcome(state) } }), settings);
      expect(e.case).toBe("returned");
      expect(row(e)).toEqual({
        state,
        message: `pipeline said ${state}`,
        queue: "complete",
        result: { state, message: `pipeline said ${state}` },
      });
    }
    // A pipeline that finishes while the worker drains completes normally: no requeue.
    const links = { pullRequest: "https://github.com/acme/widget/pull/10" };
    expect(
      row(
        classifyEnd(
          input({ ran: { outcome: { ...outcome("succeeded"), links } }, draining: true }),
          settings,
        ),
      ),
    ).toEqual({
      state: "succeeded",
      message: "pipeline said succeeded",
      queue: "complete",
      result: { state: "succeeded", message: "pipeline said succeeded", links },
    });
  });

  it('pipeline throws, attempts left: "Attempt N/M failed: reason. Queued for retry N+1/M." | retried with backoff', () => {
    expect(row(classifyEnd(input({ attempt: 1, maxAttempts: 3 }), settings))).toEqual({
      state: "queued",
      message: "Attempt 1/3 failed: model API unreachable. Queued for retry 2/3.",
      queue: "retry",
      error: { name: "Error", message: "model API unreachable" },
    });
    expect(classifyEnd(input({ attempt: 2, maxAttempts: 3 }), settings).message).toBe(
      "Attempt 2/3 failed: model API unreachable. Queued for retry 3/3.",
    );
  });

  it('pipeline throws, last attempt: "Failed after M attempts: reason" | failed', () => {
    expect(row(classifyEnd(input({ attempt: 3, maxAttempts: 3 }), settings))).toEqual({
      state: "failed",
      message: "Failed after 3 attempts: model API unreachable",
      queue: "fail",
      error: { name: "Error", message: "model API unreachable" },
    });
    // One attempt only: no count.
    expect(classifyEnd(input({ attempt: 1, maxAttempts: 1 }), settings).message).toBe(
      "Failed: model API unreachable",
    );
  });

  it("an unrecoverable error fails at once, whatever attempts are left, and keeps its name for BullMQ", () => {
    const err = new UnrecoverableError("the repository is archived");
    expect(isUnrecoverable(err)).toBe(true);
    expect(isUnrecoverable(new Error("x"))).toBe(false);
    expect(
      row(
        classifyEnd(
          input({ ran: { error: err }, unrecoverable: true, attempt: 1, maxAttempts: 3 }),
          settings,
        ),
      ),
    ).toEqual({
      state: "failed",
      message: "Failed: the repository is archived",
      queue: "fail",
      error: { name: "UnrecoverableError", message: "the repository is archived" },
    });
  });

  it("what a thrown error says is redacted, in the comment and in what BullMQ keeps", () => {
    const token = `ghs_${"a".repeat(36)}`;
    const e = classifyEnd(
      input({ ran: { error: new Error(`push with ${token} failed`) }, attempt: 1, maxAttempts: 1 }),
      settings,
    );
    expect(e.message).not.toContain(token);
    expect(e.message).toContain("[REDACTED]");
    expect(e.queue === "fail" && e.error.message).toBe(e.message.replace(/^Failed: /, ""));
    // Not an Error at all: its text, named Error.
    expect(row(classifyEnd(input({ ran: { error: "a string" }, attempt: 3 }), settings)).error).toEqual({
      name: "Error",
      message: "a string",
    });
  });

  it('worker killed (crash, OOM, SIGKILL): the next worker\'s first edit says "Resumed after the previous worker stopped responding"', () => {
    const base = { workerName: "tt-host-2:7", cards: [] as string[], attempt: 1, maxAttempts: 3 };
    expect(runningMessage({ ...base, resumed: true })).toBe(
      "Running on tt-host-2:7. Resumed after the previous worker stopped responding.",
    );
    expect(runningMessage({ ...base, resumed: false })).toBe("Running on tt-host-2:7.");
    expect(runningMessage({ ...base, cards: ["0", "1"], attempt: 2, resumed: true })).toBe(
      "Running on tt-host-2:7 (cards 0, 1). Attempt 2/3. Resumed after the previous worker stopped responding.",
    );
  });

  it("a job a worker handed back at shutdown is told as that on the next worker; a crash after it as a crash", () => {
    const mark = { requeued: "shutdown", by: "tt-host-1:42", stalledCount: 0 };
    expect(resumeOf({ stalledCounter: 0, attemptsStarted: 2, attempt: 1, progress: mark })).toEqual({
      handedOverBy: "tt-host-1:42",
    });
    expect(
      runningMessage({
        workerName: "tt-host-2:7",
        cards: [],
        attempt: 1,
        maxAttempts: 3,
        resumed: { handedOverBy: "tt-host-1:42" },
      }),
    ).toBe(
      "Running on tt-host-2:7. Resumed after worker tt-host-1:42 was shut down and put the job back in the queue.",
    );
    // Put back by a failed hardware check: nothing to say.
    expect(
      resumeOf({
        stalledCounter: 0,
        attemptsStarted: 2,
        attempt: 1,
        progress: { ...mark, requeued: "unhealthy" },
      }),
    ).toBe(false);
    // The worker that took it after the hand-over was killed: its stall counts.
    expect(resumeOf({ stalledCounter: 1, attemptsStarted: 3, attempt: 1, progress: mark })).toBe(true);
    // No mark (or not ours): a second start is a worker that stopped responding.
    expect(resumeOf({ stalledCounter: 0, attemptsStarted: 2, attempt: 1, progress: 0 })).toBe(true);
    expect(resumeOf({ stalledCounter: 0, attemptsStarted: 2, attempt: 1, progress: { requeued: "x" } })).toBe(
      true,
    );
    expect(resumeOf({ stalledCounter: 0, attemptsStarted: 1, attempt: 1, progress: 0 })).toBe(false);
  });

  it('killed too often: "Failed: the worker running this job stopped responding too many times" | failed', () => {
    expect(stalledMessage("job stalled more than allowable limit")).toBe(
      "Failed: the worker running this job stopped responding too many times (job stalled more than allowable limit). Comment `/autofix retry` to run it again.",
    );
    expect(stalledMessage(undefined)).toContain("too many times (stalled)");
  });

  it('SIGTERM: "Worker ... was shut down before the job finished; the job is back in the queue" | back to waiting, no attempt used', () => {
    const expected = {
      state: "queued",
      message:
        "Worker tt-host-1:42 was shut down before the job finished; the job is back in the queue and starts again on the next free worker (no attempt used).",
      queue: "wait",
    };
    // Aborted at the deadline: whatever the pipeline did after that.
    expect(row(classifyEnd(input({ abortKind: "shutdown", draining: true }), settings))).toEqual(expected);
    expect(
      row(classifyEnd(input({ abortKind: "shutdown", ran: { outcome: outcome("succeeded") } }), settings)),
    ).toEqual(expected);
    // Stopped at a phase boundary once the worker drains, before the deadline.
    expect(row(classifyEnd(input({ draining: true, attempt: 3, maxAttempts: 3 }), settings))).toEqual(
      expected,
    );
    // Even an unrecoverable error: the attempt was cut short, not spent.
    expect(row(classifyEnd(input({ draining: true, unrecoverable: true }), settings))).toEqual(expected);
  });

  it("longer than AUTOFIX_JOB_TIMEOUT_MINUTES: timed out | completed", () => {
    const message = "Timed out: the job ran longer than 90 min, the worker's limit.";
    const expected = {
      state: "timed_out",
      message,
      queue: "complete",
      result: { state: "timed_out", message },
    };
    expect(row(classifyEnd(input({ abortKind: "timeout" }), settings))).toEqual(expected);
    expect(
      row(classifyEnd(input({ abortKind: "timeout", ran: { outcome: outcome("succeeded") } }), settings)),
    ).toEqual(expected);
  });

  it("/autofix cancel while running: cancelled | completed", () => {
    const expected = {
      state: "cancelled",
      message: "Cancelled by request; running commands were stopped.",
      queue: "complete",
      result: { state: "cancelled", message: "cancelled by request" },
    };
    expect(row(classifyEnd(input({ abortKind: "cancel" }), settings))).toEqual(expected);
    expect(
      row(classifyEnd(input({ abortKind: "cancel", ran: { outcome: outcome("succeeded") } }), settings)),
    ).toEqual(expected);
    // The abort wins over a drain that started meanwhile.
    expect(row(classifyEnd(input({ abortKind: "cancel", draining: true }), settings))).toEqual(expected);
  });

  it("steps still running: failed at a final state, pending when the job runs again", () => {
    const settle = (over: Partial<EndInput>) => {
      const e = classifyEnd(input(over), settings);
      return [e.case, e.settle];
    };
    expect([
      settle({ ran: { outcome: outcome("succeeded") } }),
      settle({ attempt: 1 }),
      settle({ attempt: 3 }),
      settle({ abortKind: "shutdown" }),
      settle({ abortKind: "timeout" }),
      settle({ abortKind: "cancel" }),
    ]).toEqual([
      ["returned", "pending"],
      ["retry", "pending"],
      ["failed", "failed"],
      ["shutdown", "pending"],
      ["timed_out", "failed"],
      ["cancelled", "failed"],
    ]);
  });

  it("a JobAbort thrown without the signal's kind set still names its abort", () => {
    for (const kind of ["cancel", "timeout", "shutdown"] as AbortKind[]) {
      const e = classifyEnd(input({ ran: { error: new JobAbort(kind) } }), settings);
      expect(e.case).toBe({ cancel: "cancelled", timeout: "timed_out", shutdown: "shutdown" }[kind]);
    }
  });

  it("messages for the ends outside the table: unhealthy host, invalid job", () => {
    expect(unhealthyMessage("w1", "no /dev/tenstorrent/0")).toBe(
      "Worker w1 failed its hardware check (no /dev/tenstorrent/0); the job went back to the queue for a healthy host.",
    );
    expect(invalidJobMessage("invalid job data: headSha")).toBe(
      "Failed: the queued job is not valid, so it was not run. invalid job data: headSha",
    );
  });
});

describe("the last status patch", () => {
  const running = defaultSteps().map((s, i) =>
    i === 0 ? { ...s, state: "done" as const } : i === 1 ? { ...s, state: "running" as const } : s,
  );
  const view: StatusView = {
    state: "running",
    target: "acme/widget#9",
    pool: "cpu",
    trigger: "x",
    steps: running,
    links: { logs: "https://github.com/acme/widget/actions/runs/5" },
    updatedAt: new Date(0),
  };

  it("settles running steps: failed at a final state, pending when the job runs again", () => {
    const failed = classifyEnd(input({ attempt: 3 }), settings);
    expect(finalPatch(failed, view, input().ran).steps?.map((s) => s.state)).toEqual([
      "done",
      "failed",
      "pending",
      "pending",
    ]);
    const retry = classifyEnd(input(), settings);
    expect(finalPatch(retry, view, input().ran)).toEqual({
      state: "queued",
      message: retry.message,
      steps: running.map((s) => (s.state === "running" ? { ...s, state: "pending" } : s)),
    });
  });

  it("a returned outcome brings its checklist, spend, links (merged) and report", () => {
    const o: JobOutcome = {
      state: "succeeded",
      message: "Draft PR opened",
      steps: defaultSteps().map((s) => ({ ...s, state: "done" as const })),
      spend: { tokens: 10, costUsd: 0.1 },
      links: { pullRequest: "https://github.com/acme/widget/pull/10" },
      details: { summary: "Report", body: "digest" },
    };
    const ran = { outcome: o };
    const patch = finalPatch(classifyEnd(input({ ran }), settings), view, ran);
    expect(patch).toEqual({
      state: "succeeded",
      message: "Draft PR opened",
      steps: o.steps,
      spend: o.spend,
      links: { logs: view.links!.logs, pullRequest: o.links!.pullRequest },
      details: o.details,
    });
    // Without its own checklist, the running steps go back to pending.
    const bare = { outcome: outcome("partial") };
    expect(finalPatch(classifyEnd(input({ ran: bare }), settings), view, bare).steps?.[1]?.state).toBe(
      "pending",
    );
    // Cancelled after it returned: the outcome is not shown.
    const cancelled = classifyEnd(input({ ran, abortKind: "cancel" }), settings);
    expect(finalPatch(cancelled, view, ran)).toEqual({
      state: "cancelled",
      message: cancelled.message,
      steps: running.map((s) => (s.state === "running" ? { ...s, state: "failed" } : s)),
    });
  });
});
