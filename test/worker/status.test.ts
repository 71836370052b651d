import type { ProbotOctokit } from "probot";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../src/shared/logger.js";
import { GitHubStatusSink, githubStatusSinks } from "../../src/status/github.js";
import type { StatusView } from "../../src/status/model.js";
import { StatusReporter } from "../../src/status/reporter.js";
import type { StatusSink } from "../../src/status/sink.js";

const silent = createLogger({ level: "silent" });

function view(over: Partial<StatusView> = {}): StatusView {
  return {
    state: "queued",
    target: "acme/widget#9",
    jobId: "7",
    pool: "cpu",
    trigger: "`/autofix` comment",
    updatedAt: new Date(0),
    ...over,
  };
}

/** A sink that records every view; `fail` makes the next writes reject. */
function recordingSink() {
  const views: StatusView[] = [];
  const sink: StatusSink & { views: StatusView[]; fail: number } = {
    views,
    fail: 0,
    async write(v) {
      if (sink.fail > 0) {
        sink.fail--;
        throw new Error("GitHub said 502");
      }
      views.push(v);
    },
  };
  return sink;
}

describe("StatusReporter over a sink", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes state changes at once, merges and throttles the rest, and stops after finish", async () => {
    vi.useFakeTimers();
    let now = 10_000;
    const sink = recordingSink();
    const r = new StatusReporter(sink, view(), { now: () => now, logger: silent, minIntervalMs: 5_000 });
    r.startClock();
    r.update({ state: "running", message: "one" });
    await r.flush();
    expect(sink.views.map((v) => v.message)).toEqual(["one", "one"]);
    sink.views.length = 0;

    now += 1_000;
    r.update({ message: "two" });
    r.update({ spend: { tokens: 5, costUsd: 0.01 } });
    expect(sink.views).toHaveLength(0);
    now += 4_000;
    await vi.advanceTimersByTimeAsync(4_000);
    expect(sink.views).toHaveLength(1);
    expect(sink.views[0]).toMatchObject({ state: "running", message: "two", spend: { tokens: 5 } });
    expect(sink.views[0]!.elapsedMs).toBe(5_000);
    expect(sink.views[0]!.updatedAt).toEqual(new Date(15_000));

    now += 1_000;
    await r.finish({ state: "succeeded", message: "done" });
    r.update({ state: "running", message: "too late" });
    await r.flush();
    expect(sink.views.at(-2)).toMatchObject({ state: "succeeded", message: "done", elapsedMs: 6_000 });
    expect(sink.views.at(-1)).toMatchObject({ state: "succeeded", message: "done" });
    expect(sink.views.some((v) => v.message === "too late")).toBe(false);
  });

  it("a failed write is logged, never thrown, and the next write goes through", async () => {
    const sink = recordingSink();
    sink.fail = 1;
    const r = new StatusReporter(sink, view(), { now: () => 0, logger: silent });
    await expect(r.flush()).resolves.toBeUndefined();
    await r.finish({ state: "failed", message: "boom" });
    expect(sink.views.map((v) => v.state)).toEqual(["failed"]);
  });

  it("writes one after the other, in order", async () => {
    const order: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sink: StatusSink = {
      async write(v) {
        order.push(`start ${v.message}`);
        if (v.message === "first") await gate;
        order.push(`end ${v.message}`);
      },
    };
    const r = new StatusReporter(sink, view(), { now: () => 0, minIntervalMs: 0 });
    r.update({ state: "running", message: "first" });
    await Promise.resolve();
    // The first write is in flight: the last one waits for it, and shows the latest view.
    const last = r.finish({ state: "succeeded", message: "second" });
    await Promise.resolve();
    expect(order).toEqual(["start first"]);
    release();
    await last;
    expect(order).toEqual(["start first", "end first", "start second", "end second"]);
  });
});

/** Just enough of Octokit's issue comments for the GitHub sink. */
function fakeOctokit(existing: Array<{ id: number; body: string; bot?: boolean }> = []) {
  const comments = new Map(existing.map((c) => [c.id, { ...c }]));
  const calls: string[] = [];
  let next = 100;
  const listComments = async () => ({});
  const octokit = {
    paginate: async (fn: unknown) => {
      expect(fn).toBe(listComments);
      calls.push("list");
      return [...comments.values()].map((c) => ({
        id: c.id,
        body: c.body,
        user: { type: c.bot === false ? "User" : "Bot" },
      }));
    },
    rest: {
      issues: {
        listComments,
        async updateComment(p: { comment_id: number; body: string }) {
          calls.push(`update ${p.comment_id}`);
          const c = comments.get(p.comment_id);
          if (!c) throw Object.assign(new Error("Not Found"), { status: 404 });
          c.body = p.body;
          return { data: { id: p.comment_id } };
        },
        async createComment(p: { body: string }) {
          const id = next++;
          calls.push(`create ${id}`);
          comments.set(id, { id, body: p.body });
          return { data: { id } };
        },
      },
    },
  };
  return { octokit: octokit as unknown as ProbotOctokit, comments, calls };
}

describe("the GitHub status sink", () => {
  const target = { owner: "acme", repo: "widget", number: 9, installationId: 77 };

  it("renders the view, finds or creates the one comment, and keeps editing it", async () => {
    const gh = fakeOctokit([{ id: 5, body: "a person's comment", bot: false }]);
    const sink = new GitHubStatusSink(() => gh.octokit, target);
    expect(sink.commentId).toBeNull();
    await sink.write(view({ queuePosition: 2 }));
    await sink.write(view({ state: "running", message: "going" }));
    expect(gh.calls).toEqual(["list", "create 100", "update 100"]);
    expect(sink.commentId).toBe(100);
    const body = gh.comments.get(100)!.body;
    expect(body).toContain("<!-- autofix:status acme/widget#9 -->");
    expect(body).toContain("🔧 Running");
    expect(body).toContain("going");
  });

  it("uses the id carried with the job, and the marker when that comment is gone", async () => {
    const gh = fakeOctokit([{ id: 42, body: "<!-- autofix:status acme/widget#9 --> old" }]);
    await new GitHubStatusSink(() => gh.octokit, { ...target, commentId: 42 }).write(view());
    expect(gh.calls).toEqual(["update 42"]);
    gh.calls.length = 0;
    const moved = new GitHubStatusSink(() => gh.octokit, { ...target, commentId: 41 });
    await moved.write(view());
    expect(gh.calls).toEqual(["update 41", "list", "update 42"]);
    expect(moved.commentId).toBe(42);
  });

  it("asks for GitHub access on the first write, once, and again after it failed", async () => {
    const gh = fakeOctokit();
    const asked: number[] = [];
    let fail = true;
    const sinks = githubStatusSinks(async (installationId) => {
      asked.push(installationId);
      if (fail) throw new Error("no token");
      return gh.octokit;
    });
    const sink = sinks(target);
    expect(asked).toEqual([]);
    await expect(sink.write(view())).rejects.toThrow("no token");
    fail = false;
    await sink.write(view());
    await sink.write(view({ state: "running" }));
    expect(asked).toEqual([77, 77]);
    expect(gh.calls).toEqual(["list", "create 100", "update 100"]);
  });
});
