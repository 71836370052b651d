import { setImmediate as tick } from "node:timers/promises";
import { Redis } from "ioredis";
import { ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { formatStatus, readStatus } from "../../src/cli/commands/status.js";
import { OpsMetrics, scrape } from "../../src/ops/metrics.js";
import { JobQueues } from "../../src/queue/queues.js";
import type { StatusView } from "../../src/status/model.js";
import {
  type CommentLocation,
  Outbox,
  OutboxDrainer,
  type OutboxDrainerOptions,
  OutboxStatusSink,
  OutboxSweeper,
  queueJobState,
} from "../../src/status/outbox/index.js";
import { renderStatus } from "../../src/status/render.js";
import { type FakeGitHub, startFakeGitHub } from "../helpers/fake-github.js";
import { memoryLogger } from "../helpers/github.js";
import { sampleJob } from "../helpers/jobs.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { until } from "../worker/helpers/proc.js";

const INST = 42;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function issue(number: number): CommentLocation {
  return { kind: "issue", owner: "tenstorrent", repo: "tt-metal", number };
}

function view(
  state: StatusView["state"],
  n: number,
  at: number,
  extra: Partial<StatusView> = {},
): StatusView {
  return {
    state,
    target: `tenstorrent/tt-metal#${n}`,
    jobId: `job-${n}`,
    pool: "n150",
    trigger: "`/autofix` comment",
    updatedAt: new Date(at),
    ...extra,
  };
}

/** One "process": its own Redis connection, outbox and drainer, as the web process and a worker have. */
function processOf(fake: FakeGitHub, prefix: string, opts: Partial<OutboxDrainerOptions> = {}) {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const outbox = new Outbox({ redis, prefix, ...(opts.now ? { now: opts.now } : {}) });
  const drainer = new OutboxDrainer({
    outbox,
    octokitFor: async () =>
      new ProbotOctokit({
        baseUrl: fake.url,
        auth: "ghs_outboxtesttoken",
        throttle: { enabled: false },
        retry: { enabled: false },
      }) as ProbotOctokit,
    pollMs: 20,
    backoff: { baseMs: 5, maxMs: 40 },
    rate: { writeMs: 0, contentMs: 0 },
    ...opts,
  });
  cleanups.push(async () => {
    await drainer.stop();
    redis.disconnect();
  });
  return { redis, outbox, drainer };
}

async function setup(opts: { now?: () => number } = {}) {
  const fake = await startFakeGitHub(opts.now ? { now: opts.now } : {});
  const prefix = uniquePrefix("outbox");
  cleanups.push(async () => {
    await fake.close();
    await dropPrefix(prefix);
  });
  return { fake, prefix };
}

const statusComments = (fake: FakeGitHub, target: string) =>
  [...fake.comments.values()].filter((c) => c.issue === target && c.body.includes("autofix:status"));
const creates = (fake: FakeGitHub) =>
  fake.requests.filter((r) => r.method === "POST" && /\/comments$/.test(r.path) && !r.fault);

async function drained(outbox: Outbox): Promise<boolean> {
  const d = await outbox.depth();
  return d.pending.status + d.pending.reply + d.pending.reaction === 0;
}

describe("the outbox: one writer per status comment", () => {
  it("a web-side queued write and a worker-side running write racing for 5 new targets at 150 ms latency: one comment each, ending in the newest view", async () => {
    const { fake, prefix } = await setup();
    fake.fault({ path: /.*/, delayMs: 150 });
    const web = processOf(fake, prefix);
    const worker = processOf(fake, prefix);
    web.drainer.start();
    worker.drainer.start();
    const t0 = Date.now();
    const targets = [1, 2, 3, 4, 5];
    await Promise.all(
      targets.flatMap((n) => {
        const t = { owner: "tenstorrent", repo: "tt-metal", number: n, installationId: INST };
        return [
          new OutboxStatusSink(web.outbox, t).write(view("queued", n, t0, { queuePosition: 1 })),
          new OutboxStatusSink(worker.outbox, t).write(view("running", n, t0 + 5)),
        ];
      }),
    );
    expect(await until(() => drained(web.outbox), 20_000)).toBe(true);
    for (const n of targets) {
      const key = `tenstorrent/tt-metal#${n}`;
      const mine = statusComments(fake, key);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.body).toBe(renderStatus(view("running", n, t0 + 5)));
      expect(await web.outbox.commentIdOf(issue(n))).toBe(mine[0]!.id);
    }
  });

  it("an older view that arrives late never replaces a newer one, nor a progress view the final state", async () => {
    const { fake, prefix } = await setup();
    const web = processOf(fake, prefix);
    const worker = processOf(fake, prefix);
    const t0 = Date.now();
    await new OutboxStatusSink(worker.outbox, {
      owner: "tenstorrent",
      repo: "tt-metal",
      number: 9,
      installationId: INST,
    }).write(view("running", 9, t0));
    worker.drainer.start();
    expect(await until(() => drained(worker.outbox), 10_000)).toBe(true);
    // The web's write was slow: its view was made before the worker's, and arrives after it.
    expect(await web.outbox.status(issue(9), INST, view("queued", 9, t0 - 5), { jobId: "job-9" })).toBe(
      "stale",
    );
    // A late progress view never replaces the job's final state either.
    await worker.outbox.status(issue(9), INST, view("succeeded", 9, t0 + 10), { jobId: "job-9" });
    expect(await worker.outbox.status(issue(9), INST, view("running", 9, t0 + 20), { jobId: "job-9" })).toBe(
      "stale",
    );
    web.drainer.start();
    await web.drainer.drainOnce();
    expect(statusComments(fake, "tenstorrent/tt-metal#9")).toHaveLength(1);
    expect(await until(() => drained(web.outbox))).toBe(true);
    expect(fake.latest("tenstorrent/tt-metal#9")).toContain("✅ Succeeded");
  });

  it("four (and more) 500s on the final edit: the final state lands once GitHub recovers", async () => {
    const { fake, prefix } = await setup();
    const mem = memoryLogger();
    const worker = processOf(fake, prefix, { log: mem.log });
    worker.drainer.start();
    const t0 = Date.now();
    await worker.outbox.status(issue(3), INST, view("running", 3, t0), { jobId: "job-3", pool: "n150" });
    expect(await until(() => drained(worker.outbox))).toBe(true);
    fake.fault({ method: "PATCH", path: /\/issues\/comments\/\d+$/, status: 500, times: 6 });
    const final = view("succeeded", 3, t0 + 10, { message: "PR opened" });
    await worker.outbox.status(issue(3), INST, final, { jobId: "job-3", pool: "n150" });
    expect(await until(() => fake.latest("tenstorrent/tt-metal#3") === renderStatus(final), 20_000)).toBe(
      true,
    );
    const failed = fake.requests.filter((r) => r.method === "PATCH" && r.fault === "status");
    expect(failed).toHaveLength(6);
    expect(statusComments(fake, "tenstorrent/tt-metal#3")).toHaveLength(1);
    expect(await until(() => drained(worker.outbox))).toBe(true);
    // The operator reads the outage and its end in the log.
    const lines = mem.lines();
    expect(lines.filter((l) => l.msg === "outbox: GitHub write failed; retrying")).toHaveLength(6);
    expect(
      await until(() =>
        mem
          .lines()
          .some(
            (l) =>
              l.msg === "outbox caught up: every GitHub write that waited has been delivered" &&
              l.lateWrites === 1,
          ),
      ),
    ).toBe(true);
  });

  it("a reply GitHub created but never answered for is not posted twice", async () => {
    const { fake, prefix } = await setup();
    // The retry comes after GitHub finished the first create (backoff 2 s > 600 ms late answer).
    const p = processOf(fake, prefix, { requestTimeoutMs: 200, backoff: { baseMs: 2_000, maxMs: 2_000 } });
    // The first create is held past the drainer's timeout, then made: GitHub did it, we never heard.
    fake.fault({
      method: "POST",
      path: "/repos/tenstorrent/tt-metal/issues/8/comments",
      delayMs: 600,
      times: 1,
    });
    expect(await p.outbox.reply(issue(8), INST, "Already queued", { id: "delivery-8" })).toBe(true);
    p.drainer.start();
    expect(await until(() => drained(p.outbox))).toBe(true);
    expect(await until(() => fake.history("tenstorrent/tt-metal#8").length > 0)).toBe(true);
    const replies = [...fake.comments.values()].filter((c) => c.issue === "tenstorrent/tt-metal#8");
    expect(replies).toHaveLength(1);
    expect(replies[0]!.body).toMatch(/^Already queued\n<!-- autofix:outbox delivery-8 -->$/);
  });

  it("a recorded comment a person deleted (404): a new one is created, once", async () => {
    const { fake, prefix } = await setup();
    const p = processOf(fake, prefix);
    p.drainer.start();
    const t0 = Date.now();
    await p.outbox.status(issue(4), INST, view("queued", 4, t0), { jobId: "job-4" });
    expect(await until(() => drained(p.outbox))).toBe(true);
    const [first] = statusComments(fake, "tenstorrent/tt-metal#4");
    fake.comments.delete(first!.id);
    await p.outbox.status(issue(4), INST, view("running", 4, t0 + 1), { jobId: "job-4" });
    await p.outbox.status(issue(4), INST, view("running", 4, t0 + 2, { message: "reproducing" }), {
      jobId: "job-4",
    });
    expect(await until(() => drained(p.outbox))).toBe(true);
    await p.outbox.status(issue(4), INST, view("failed", 4, t0 + 3), { jobId: "job-4" });
    expect(await until(() => drained(p.outbox))).toBe(true);
    const now = statusComments(fake, "tenstorrent/tt-metal#4");
    expect(now).toHaveLength(1);
    expect(now[0]!.id).not.toBe(first!.id);
    expect(now[0]!.body).toContain("❌ Failed");
    expect(creates(fake)).toHaveLength(2);
    expect(await p.outbox.commentIdOf(issue(4))).toBe(now[0]!.id);
  });

  it("a write GitHub can never accept (422 locked issue) is dropped with an error, and the lane moves on", async () => {
    const { fake, prefix } = await setup();
    const p = processOf(fake, prefix);
    fake.fault({
      method: "POST",
      path: "/repos/tenstorrent/tt-metal/issues/5/comments",
      status: 422,
      times: 1,
    });
    await p.outbox.reply(issue(5), INST, "first");
    await p.outbox.reply(issue(5), INST, "second");
    p.drainer.start();
    expect(await until(() => drained(p.outbox))).toBe(true);
    expect(fake.history("tenstorrent/tt-metal#5")).toEqual(["second"]);
  });

  it("replies are idempotent by id, status goes before replies before reactions", async () => {
    const { fake, prefix } = await setup();
    const p = processOf(fake, prefix);
    expect(
      await p.outbox.react({ owner: "tenstorrent", repo: "tt-metal" }, INST, 77, "eyes"),
    ).toBeUndefined();
    expect(await p.outbox.reply(issue(6), INST, "hello", { id: "delivery-1" })).toBe(true);
    expect(await p.outbox.reply(issue(6), INST, "hello", { id: "delivery-1" })).toBe(false);
    await p.outbox.status(issue(6), INST, view("queued", 6, Date.now()), { jobId: "job-6" });
    p.drainer.start();
    expect(await until(() => drained(p.outbox))).toBe(true);
    const writes = fake.requests.filter((r) => r.method === "POST");
    expect(writes.map((r) => (r.path.endsWith("/reactions") ? "reaction" : "comment"))).toEqual([
      "comment",
      "comment",
      "reaction",
    ]);
    const bodies = fake.history("tenstorrent/tt-metal#6");
    expect(bodies[0]).toContain("autofix:status");
    expect(bodies.filter((b) => b.startsWith("hello"))).toHaveLength(1);
    expect(fake.reactions).toEqual([{ commentId: 77, content: "eyes" }]);
  });

  it("a status on a commit: a commit comment is created, then edited", async () => {
    const { fake, prefix } = await setup();
    const p = processOf(fake, prefix);
    p.drainer.start();
    const sha = "b".repeat(40);
    const target = `tenstorrent/tt-metal@${sha}`;
    const t = { owner: "tenstorrent", repo: "tt-metal", number: 0, sha, installationId: INST };
    const sink = new OutboxStatusSink(p.outbox, t);
    const t0 = Date.now();
    await sink.write({ ...view("queued", 0, t0), target });
    expect(await until(() => drained(p.outbox))).toBe(true);
    await sink.write({ ...view("succeeded", 0, t0 + 1), target });
    expect(await until(() => drained(p.outbox))).toBe(true);
    const mine = [...fake.comments.values()].filter((c) => c.issue === target);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.edits).toHaveLength(2);
    expect(mine[0]!.body).toContain("✅ Succeeded");
    expect(
      fake.requests.some(
        (r) => r.method === "PATCH" && r.path === `/repos/tenstorrent/tt-metal/comments/${mine[0]!.id}`,
      ),
    ).toBe(true);
  });
});

describe("the outbox in /metrics", () => {
  it("shows what waits, by kind, and how old the oldest write is, in /metrics and autofix status; 0 once delivered", async () => {
    let t = 5_000_000;
    const { fake, prefix } = await setup();
    const p = processOf(fake, prefix, { now: () => t });
    await p.outbox.status(issue(1), INST, view("queued", 1, t), { jobId: "job-1" });
    await p.outbox.status(issue(1), INST, view("running", 1, t + 1), { jobId: "job-1" });
    await p.outbox.reply(issue(2), INST, "hi");
    t += 42_000;
    const metrics = new OpsMetrics({ processMetrics: false });
    const source = { pools: [], counts: async () => ({}), oldestWaiting: async () => null };
    metrics.apply(await scrape(p.redis, prefix, source, new Date(t)));
    const text = await metrics.render();
    expect(text).toContain('autofix_outbox_pending{kind="status"} 1');
    expect(text).toContain('autofix_outbox_pending{kind="reply"} 1');
    expect(text).toContain("autofix_outbox_oldest_seconds 42");
    const queues = new JobQueues({ redis: p.redis, prefix });
    cleanups.push(() => queues.close());
    const waiting = formatStatus(await readStatus(queues, [], new Date(t))).join("\n");
    expect(waiting).toContain(
      "GitHub writes waiting: 1 status comment(s), 1 reply/other lane(s), 0 reaction lane(s); oldest 42s",
    );
    p.drainer.start();
    expect(await until(() => drained(p.outbox))).toBe(true);
    expect(formatStatus(await readStatus(queues, [], new Date(t)))).toContain("GitHub writes: all delivered");
    metrics.apply(await scrape(p.redis, prefix, source, new Date(t)));
    expect(await metrics.render()).toContain("autofix_outbox_oldest_seconds 0");
  });
});

describe("the outbox's pacing", () => {
  it("a burst of 120 new comments is drained at ≤ 80 a minute per installation, and a retry-after pauses it", async () => {
    let t = 1_000_000;
    const now = () => t;
    const { fake, prefix } = await setup({ now });
    const p = processOf(fake, prefix, {
      now,
      rate: {},
      // Virtual time: every wait is exactly until the installation's next slot.
      pollMs: 60_000,
      sleep: async (ms) => {
        await tick();
        t += ms;
      },
    });
    for (let n = 1; n <= 120; n++) await p.outbox.reply(issue(n), INST, `reply ${n}`);
    fake.fault({
      method: "POST",
      path: "/repos/tenstorrent/tt-metal/issues/10/comments",
      status: 403,
      times: 1,
      headers: { "retry-after": "30" },
    });
    p.drainer.start();
    expect(await until(() => drained(p.outbox), 30_000)).toBe(true);
    const posts = creates(fake).map((r) => r.at);
    expect(posts).toHaveLength(120);
    for (let i = 1; i < posts.length; i++) expect(posts[i]! - posts[i - 1]!).toBeGreaterThanOrEqual(750);
    for (let i = 0; i < posts.length; i++) {
      const inMinute = posts.filter((x) => x >= posts[i]! && x < posts[i]! + 60_000).length;
      expect(inMinute).toBeLessThanOrEqual(80);
    }
    const refused = fake.requests.find((r) => r.fault === "status")!;
    const next = fake.requests.find((r) => r.seq > refused.seq)!;
    expect(next.at - refused.at).toBeGreaterThanOrEqual(30_000);
  });
});

describe("the sweeper", () => {
  it("a queued job removed from Redis: its comment ends in a final 'lost' state", async () => {
    const { fake, prefix } = await setup();
    const web = processOf(fake, prefix);
    const queues = new JobQueues({ redis: web.redis, prefix });
    cleanups.push(() => queues.close());
    const job = sampleJob({ target: { kind: "issue", number: 11, headSha: "a".repeat(40) } });
    const { jobId } = await queues.enqueue(job);
    const sweeper = new OutboxSweeper({ outbox: web.outbox, jobState: queueJobState(queues) });
    cleanups.push(() => sweeper.stop());
    await web.outbox.status(issue(11), INST, view("queued", 11, Date.now(), { jobId }), {
      jobId,
      pool: job.pool,
    });
    web.drainer.start();
    expect(await sweeper.sweep()).toBe(0);
    await queues.queue(job.pool).remove(jobId);
    expect(await sweeper.sweep()).toBe(1);
    expect(await until(() => drained(web.outbox))).toBe(true);
    const [c] = statusComments(fake, "tenstorrent/tt-metal#11");
    expect(c!.body).toContain("❌ Failed");
    expect(c!.body).toContain("This job was lost");
    expect(c!.body).toContain("/autofix retry");
    expect(statusComments(fake, "tenstorrent/tt-metal#11")).toHaveLength(1);
    expect(await sweeper.sweep()).toBe(0);
  });

  it("Redis restarted without persistence: a web process that was running still reconciles the comment", async () => {
    const { fake, prefix } = await setup();
    const web = processOf(fake, prefix);
    const queues = new JobQueues({ redis: web.redis, prefix });
    cleanups.push(() => queues.close());
    const job = sampleJob({ target: { kind: "issue", number: 12, headSha: "a".repeat(40) } });
    const { jobId } = await queues.enqueue(job);
    const sweeper = new OutboxSweeper({ outbox: web.outbox, jobState: queueJobState(queues) });
    cleanups.push(() => sweeper.stop());
    await web.outbox.status(issue(12), INST, view("queued", 12, Date.now(), { jobId }), {
      jobId,
      pool: job.pool,
    });
    web.drainer.start();
    expect(await until(() => drained(web.outbox))).toBe(true);
    await dropPrefix(prefix); // every key gone: queue, outbox, index, comment id
    expect(await sweeper.sweep()).toBe(1);
    expect(
      await until(() => fake.latest("tenstorrent/tt-metal#12")?.includes("This job was lost") === true),
    ).toBe(true);
    expect(statusComments(fake, "tenstorrent/tt-metal#12")).toHaveLength(1);
  });

  it("a job that finished meanwhile keeps its final state", async () => {
    const { fake, prefix } = await setup();
    const web = processOf(fake, prefix);
    const sweeper = new OutboxSweeper({ outbox: web.outbox, jobState: async () => null });
    cleanups.push(() => sweeper.stop());
    const t0 = Date.now();
    await web.outbox.status(issue(13), INST, view("running", 13, t0), { jobId: "job-13", pool: "n150" });
    await web.outbox.status(issue(13), INST, view("succeeded", 13, t0 + 1), {
      jobId: "job-13",
      pool: "n150",
    });
    expect(await sweeper.sweep()).toBe(0);
    web.drainer.start();
    expect(await until(() => drained(web.outbox))).toBe(true);
    expect(fake.latest("tenstorrent/tt-metal#13")).toContain("✅ Succeeded");
  });
});
