import { type Job, WaitingError } from "bullmq";
import type { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import type { FixJob } from "../../src/contracts/fix-job.js";
import type { JobExecutor } from "../../src/sandbox/executor.js";
import { createLogger } from "../../src/shared/logger.js";
import type { StatusView } from "../../src/status/model.js";
import type { StatusTarget } from "../../src/status/sink.js";
import type { PoolPlan } from "../../src/worker/hardware.js";
import { type ActiveJobHandle, createJobProcessor, type LifecycleDeps } from "../../src/worker/lifecycle.js";
import type { FinishedJob, JobContext, JobRunner } from "../../src/worker/types.js";
import type { Workspace } from "../../src/worker/workspace.js";
import { makeJob } from "./helpers/harness.js";

/**
 * The processor on fakes only (no Redis, git, GitHub or timers): every state change it makes
 * must reach the injected status sink, and cleanup must give everything back, at each end.
 */

const SHA = "c0ffee".padEnd(40, "0");

interface Bed {
  deps: LifecycleDeps;
  /** Every view written, with the target its sink was made for. */
  writes: Array<{ target: StatusTarget; view: StatusView }>;
  /** What happened, in order: cards, executor, workspace, hygiene, queue moves. */
  events: string[];
  finished: FinishedJob[];
  drain: AbortController;
  active: Map<string, ActiveJobHandle>;
}

function bed(runJob: JobRunner, over: Partial<LifecycleDeps> = {}): Bed {
  const writes: Bed["writes"] = [];
  const events: string[] = [];
  const finished: FinishedJob[] = [];
  const drain = new AbortController();
  const active = new Map<string, ActiveJobHandle>();
  const deps: LifecycleDeps = {
    runJob,
    status: (target) => ({
      async write(view) {
        writes.push({ target, view });
      },
    }),
    async executors(spec) {
      events.push(`executor ${spec.jobId} ${JSON.stringify(spec.env)}`);
      return {
        kind: "host",
        workspace: spec.workspace,
        jobEnv: spec.env,
        run: async () => ({ exitCode: 0, stdout: "", stderr: "" }),
        killAll: async () => {
          events.push("executor processes killed");
        },
        dispose: async () => {
          events.push("executor disposed");
        },
      } as unknown as JobExecutor;
    },
    github: async () => ({ octokit: {} as ProbotOctokit, token: async () => "ghs_test" }),
    workspaces: {
      async prepare(input) {
        events.push(`workspace ${input.id} at ${input.sha.slice(0, 7)}`);
        return { dir: "/nonexistent/autofix-ws", sha: input.sha, mirror: "", repo: input.repo, keepRef: "" };
      },
      async remove(ws: Workspace) {
        events.push(`workspace removed ${ws.dir}`);
      },
      cleanupStale: async () => [],
      remoteUrl: (repo) => `file:///remote/${repo.owner}/${repo.name}.git`,
      helperPath: "/helper",
    },
    clock: { now: () => 1_000 },
    logger: createLogger({ level: "silent" }),
    cancel: { watch: () => () => {}, clear: async () => {} },
    host: {
      async acquireCards(n) {
        const cards = ["0", "1"].slice(0, n);
        events.push(`cards ${cards.join(",") || "none"}`);
        return cards;
      },
      releaseCards(cards) {
        events.push(`released ${cards.join(",") || "none"}`);
      },
      healthCheck: async () => null,
      onUnhealthy(_plan, reason) {
        events.push(`unhealthy ${reason}`);
      },
      async afterJob(_plan, info) {
        events.push(`after job ${info.cards.join(",") || "none"}`);
      },
    },
    drain: drain.signal,
    active,
    workerName: "w1",
    throttleMs: 0,
    jobTimeoutMs: 0,
    recordFinished: async (f) => {
      finished.push(f);
    },
    ...over,
  };
  return { deps, writes, events, finished, drain, active };
}

/** Just what the processor reads of a BullMQ job. */
function fakeJob(
  data: unknown,
  b: Bed,
  opts: { attemptsMade?: number; attempts?: number; stalledCounter?: number; progress?: unknown } = {},
): Job<FixJob> {
  const attemptsMade = opts.attemptsMade ?? 0;
  return {
    id: "7",
    data,
    attemptsMade,
    attemptsStarted: attemptsMade + 1,
    stalledCounter: opts.stalledCounter ?? 0,
    opts: { attempts: opts.attempts ?? 3 },
    progress: opts.progress ?? 0,
    async moveToWait(token?: string) {
      b.events.push(`moved to wait (${token})`);
      return 0;
    },
    async updateProgress(p: unknown) {
      b.events.push(`progress ${JSON.stringify(p)}`);
    },
  } as unknown as Job<FixJob>;
}

const cpu: PoolPlan = { pool: "cpu", cards: 0, concurrency: 1 };
const n150: PoolPlan = { pool: "n150", cards: 1, concurrency: 1 };
const views = (b: Bed) => b.writes.map((w) => w.view);
const last = (b: Bed) => b.writes.at(-1)!.view;

describe("the job processor's status goes through the injected sink", () => {
  it("a returned outcome: running, the workspace step, progress, then the final view; then cleanup in order", async () => {
    const seen: JobContext[] = [];
    const b = bed(async (ctx) => {
      seen.push(ctx);
      ctx.onProgress({ message: "reproducing", spend: { tokens: 3, costUsd: 0.01 } });
      return {
        state: "succeeded",
        message: "Draft PR opened",
        spend: { tokens: 9, costUsd: 0.02 },
        links: { pullRequest: "https://github.com/acme/widget/pull/10" },
        metrics: { phases: [{ name: "fix", ms: 5 }], gates: { passed: 2, total: 2 } },
      };
    });
    const job = makeJob(SHA, { pool: "n150", statusCommentId: 9001 });
    const result = await createJobProcessor(n150, b.deps)(fakeJob(job, b), "tok");
    expect(result).toEqual({
      state: "succeeded",
      message: "Draft PR opened",
      links: { pullRequest: "https://github.com/acme/widget/pull/10" },
    });
    // One sink, for the job's target, with the comment id carried in the job as a hint.
    expect(new Set(b.writes.map((w) => JSON.stringify(w.target)))).toEqual(
      new Set([
        JSON.stringify({ owner: "acme", repo: "widget", number: 9, installationId: 77, commentId: 9001 }),
      ]),
    );
    expect(views(b).map((v) => [v.state, v.message])).toEqual([
      ["running", "Running on w1 (cards 0)."],
      ["running", "Running on w1 (cards 0)."],
      ["running", "reproducing"],
      ["succeeded", "Draft PR opened"],
    ]);
    expect(views(b)[1]!.steps?.[0]).toMatchObject({ state: "running", detail: "workspace at c0ffee0" });
    expect(last(b)).toMatchObject({
      jobId: "7",
      pool: "n150",
      requestedBy: "octocat",
      spend: { tokens: 9, costUsd: 0.02 },
      elapsedMs: 0,
      links: { pullRequest: "https://github.com/acme/widget/pull/10" },
    });
    // The running step went back to pending: the pipeline brought no checklist of its own.
    expect(last(b).steps?.map((s) => s.state)).toEqual(["pending", "pending", "pending", "pending"]);
    expect(b.finished).toEqual([
      {
        pool: "n150",
        state: "succeeded",
        phases: [{ name: "fix", ms: 5 }],
        gates: { passed: 2, total: 2 },
        tokens: 9,
        costUsd: 0.02,
      },
    ]);
    expect(seen[0]!.cards).toEqual(["0"]);
    expect(seen[0]!.executor.jobEnv).toEqual({ TT_VISIBLE_DEVICES: "0" });
    expect(b.events).toEqual([
      "cards 0",
      "workspace 7-1 at c0ffee0",
      'executor 7-1 {"TT_VISIBLE_DEVICES":"0"}',
      // The job's processes first; the reset (the repository's, in the job's sandbox) next;
      // then the executor and the workspace go.
      "executor processes killed",
      "after job 0",
      "released 0",
      "executor disposed",
      "workspace removed /nonexistent/autofix-ws",
    ]);
    expect(b.active.size).toBe(0);
  });

  it("a retry, then the last attempt: queued with the reason, then failed; both thrown for BullMQ", async () => {
    const b = bed(async () => {
      throw new Error("model API unreachable");
    });
    const processJob = createJobProcessor(cpu, b.deps);
    const err1 = await processJob(fakeJob(makeJob(SHA), b, { attemptsMade: 0, attempts: 2 })).catch((e) => e);
    expect(err1).toBeInstanceOf(Error);
    expect(err1.message).toBe("model API unreachable");
    expect(last(b)).toMatchObject({
      state: "queued",
      message: "Attempt 1/2 failed: model API unreachable. Queued for retry 2/2.",
    });
    expect(b.finished).toEqual([]);
    const err2 = await processJob(fakeJob(makeJob(SHA), b, { attemptsMade: 1, attempts: 2 })).catch((e) => e);
    expect(err2.message).toBe("model API unreachable");
    expect(last(b)).toMatchObject({
      state: "failed",
      message: "Failed after 2 attempts: model API unreachable",
    });
    expect(views(b).find((v) => v.state === "running" && /Attempt 2\/2/.test(v.message ?? ""))).toBeTruthy();
    expect(b.finished.map((f) => f.state)).toEqual(["failed"]);
    expect(b.events.filter((e) => e.startsWith("released"))).toHaveLength(2);
  });

  it("cancel, timeout and the shutdown deadline abort the job; each ends through the sink", async () => {
    for (const [kind, state, message] of [
      ["cancel", "cancelled", "Cancelled by request; running commands were stopped."],
      ["timeout", "timed_out", "Timed out: the job ran longer than 2 min, the worker's limit."],
      [
        "shutdown",
        "queued",
        "Worker w1 was shut down before the job finished; the job is back in the queue and starts again on the next free worker (no attempt used).",
      ],
    ] as const) {
      let b: Bed;
      const runner: JobRunner = async (ctx) => {
        ctx.onProgress({ steps: [{ name: "Reproduce the failure", state: "running" }] });
        b.active.get("cpu/7")!.abort(kind);
        expect(ctx.signal.aborted).toBe(true);
        throw ctx.signal.reason;
      };
      b = bed(runner, { jobTimeoutMs: 120_000 });
      const out = await createJobProcessor(cpu, b.deps)(fakeJob(makeJob(SHA), b), "tok").then(
        (r) => r,
        (e) => e,
      );
      expect(last(b)).toMatchObject({ state, message });
      if (kind === "shutdown") {
        expect(out).toBeInstanceOf(WaitingError);
        expect(b.events).toContain("moved to wait (tok)");
        expect(last(b).steps).toEqual([{ name: "Reproduce the failure", state: "pending" }]);
        expect(b.finished).toEqual([]);
      } else {
        expect(out).toMatchObject({ state });
        expect(last(b).steps).toEqual([{ name: "Reproduce the failure", state: "failed" }]);
        expect(b.finished).toMatchObject([{ state, tokens: 0 }]);
      }
      expect(b.events).toContain("released none");
    }
  });

  it("a pipeline that throws while the worker drains goes back to waiting", async () => {
    let b: Bed;
    b = bed(async () => {
      b.drain.abort();
      throw new Error("stopping after the reproduce phase");
    });
    const out = await createJobProcessor(cpu, b.deps)(fakeJob(makeJob(SHA), b), "tok").catch((e) => e);
    expect(out).toBeInstanceOf(WaitingError);
    expect(last(b)).toMatchObject({
      state: "queued",
      message:
        "Worker w1 was shut down before the job finished; the job is back in the queue and starts again on the next free worker (no attempt used).",
    });
  });

  it("an unhealthy host: the job goes back to the queue, and the view says why", async () => {
    const b = bed(async () => {
      throw new Error("must not run");
    });
    b.deps.host.healthCheck = async () => "no /dev/tenstorrent/0";
    const out = await createJobProcessor(n150, b.deps)(
      fakeJob(makeJob(SHA, { pool: "n150" }), b),
      "tok",
    ).catch((e) => e);
    expect(out).toBeInstanceOf(WaitingError);
    expect(views(b)).toHaveLength(1);
    expect(last(b)).toMatchObject({
      state: "queued",
      message:
        "Worker w1 failed its hardware check (no /dev/tenstorrent/0); the job went back to the queue for a healthy host.",
    });
    expect(b.events).toEqual([
      "cards 0",
      "unhealthy no /dev/tenstorrent/0",
      'progress {"requeued":"unhealthy","by":"w1","stalledCount":0}',
      "moved to wait (tok)",
      "after job 0",
      "released 0",
    ]);
    expect(b.finished).toEqual([]);
  });

  it("a job handed back at a shutdown says so on the next worker, not that a worker stopped responding", async () => {
    let b: Bed;
    b = bed(async () => {
      b.drain.abort();
      throw new Error("stopping after the reproduce phase");
    });
    await createJobProcessor(cpu, b.deps)(fakeJob(makeJob(SHA), b), "tok").catch((e) => e);
    const mark = b.events.find((e) => e.startsWith("progress "));
    expect(mark).toBe('progress {"requeued":"shutdown","by":"w1","stalledCount":0}');
    // The next worker takes it: BullMQ counted one more start, and the mark is on the job.
    const next = bed(async () => ({ state: "succeeded", message: "done" }));
    const progress = JSON.parse(mark!.slice("progress ".length));
    const job = { ...fakeJob(makeJob(SHA), next, { progress }), attemptsStarted: 2 } as Job<FixJob>;
    await createJobProcessor(cpu, next.deps)(job);
    expect(views(next)[0]!.message).toBe(
      "Running on w1. Resumed after worker w1 was shut down and put the job back in the queue.",
    );
    // Without the mark, a second start is a worker that stopped responding.
    const crashed = bed(async () => ({ state: "succeeded", message: "done" }));
    const lost = { ...fakeJob(makeJob(SHA), crashed), attemptsStarted: 2 } as Job<FixJob>;
    await createJobProcessor(cpu, crashed.deps)(lost);
    expect(views(crashed)[0]!.message).toBe(
      "Running on w1. Resumed after the previous worker stopped responding.",
    );
  });

  it("a resumed job says so in its first view", async () => {
    const b = bed(async () => ({ state: "partial", message: "reproduced, no fix" }));
    await createJobProcessor(cpu, b.deps)(fakeJob(makeJob(SHA), b, { stalledCounter: 1 }));
    expect(views(b)[0]!.message).toBe("Running on w1. Resumed after the previous worker stopped responding.");
    expect(last(b)).toMatchObject({ state: "partial", message: "reproduced, no fix" });
  });

  it("an invalid job: one failed view for the target its data still names, and an unrecoverable error", async () => {
    const b = bed(async () => {
      throw new Error("must not run");
    });
    const bad = { ...makeJob("not-a-sha"), statusCommentId: 55, requestedBy: "octocat" };
    const err = await createJobProcessor(cpu, b.deps)(fakeJob(bad, b)).catch((e) => e);
    expect(err.name).toBe("UnrecoverableError");
    expect(err.message).toMatch(/^invalid job data: .*headSha/);
    expect(b.writes).toHaveLength(1);
    expect(b.writes[0]!.target).toEqual({
      owner: "acme",
      repo: "widget",
      number: 9,
      installationId: 77,
      commentId: 55,
    });
    expect(b.writes[0]!.view).toMatchObject({
      state: "failed",
      target: "acme/widget#9",
      jobId: "7",
      pool: "cpu",
      requestedBy: "octocat",
      trigger: "invalid job",
    });
    expect(b.writes[0]!.view.message).toMatch(
      /^Failed: the queued job is not valid, so it was not run\. invalid job data/,
    );
    expect(b.events).toEqual([]);
    // Nothing to say where: no write at all.
    const none = bed(async () => ({ state: "succeeded", message: "" }));
    await expect(createJobProcessor(cpu, none.deps)(fakeJob({ nonsense: true }, none))).rejects.toThrow(
      /invalid job data/,
    );
    expect(none.writes).toEqual([]);
  });

  it("a sink that fails never breaks the job", async () => {
    const b = bed(async () => ({ state: "succeeded", message: "ok" }));
    b.deps.status = () => ({
      write: async () => {
        throw new Error("GitHub said 502");
      },
    });
    await expect(createJobProcessor(cpu, b.deps)(fakeJob(makeJob(SHA), b))).resolves.toMatchObject({
      state: "succeeded",
    });
    expect(b.finished.map((f) => f.state)).toEqual(["succeeded"]);
  });
});
