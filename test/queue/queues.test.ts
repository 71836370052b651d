import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFixJob } from "../../src/contracts/fix-job.js";
import { JobQueues } from "../../src/queue/queues.js";
import { sampleJob } from "../helpers/jobs.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

describe("pool queues on a real Redis", () => {
  const prefix = uniquePrefix("queues");
  const queues = new JobQueues({ redis: TEST_REDIS_URL, prefix });

  beforeAll(async () => {
    await queues.queue("n150").waitUntilReady();
  });
  afterAll(async () => {
    await queues.close();
    await dropPrefix(prefix);
  });

  it("round-trips a FixJob through Redis unchanged and still valid", async () => {
    const job = sampleJob({ fingerprint: "rt-1" });
    const { jobId, deduplicated } = await queues.enqueue(job);
    expect(deduplicated).toBe(false);
    const stored = await queues.queue("n150").getJob(jobId);
    expect(stored?.data).toEqual(job);
    expect(parseFixJob(stored?.data)).toEqual({ ok: true, job });
    // The job sits in the pool's own queue, under the configured prefix.
    expect(await queues.connection.exists(`${prefix}:n150:${jobId}`)).toBe(1);
  });

  it("keeps one job per fingerprint while it is waiting, and tells the caller which", async () => {
    const first = await queues.enqueue(sampleJob({ fingerprint: "dup-1" }));
    const second = await queues.enqueue(sampleJob({ fingerprint: "dup-1", requestedBy: "someone-else" }));
    expect(second).toEqual({ jobId: first.jobId, deduplicated: true });
    expect(await queues.findActive("dup-1")).toEqual({ pool: "n150", jobId: first.jobId });
    expect(await queues.findActive("never-seen")).toBeNull();
  });

  it("reports the queue position of a waiting job", async () => {
    const q = uniquePrefix("pos");
    const local = new JobQueues({ redis: TEST_REDIS_URL, prefix: q });
    try {
      await local.queue("t3k").waitUntilReady();
      const a = await local.enqueue(sampleJob({ pool: "t3k", fingerprint: "p-a" }));
      const b = await local.enqueue(sampleJob({ pool: "t3k", fingerprint: "p-b" }));
      expect(await local.position("t3k", a.jobId)).toBe(1);
      expect(await local.position("t3k", b.jobId)).toBe(2);
    } finally {
      await local.close();
      await dropPrefix(q);
    }
  });

  it("refuses invalid job data and unknown pools before touching Redis", async () => {
    await expect(
      queues.enqueue(sampleJob({ target: { kind: "issue", number: 7, headSha: "main" } })),
    ).rejects.toThrow(/40-character/);
    expect(() => queues.queue("gpu")).toThrow(/unknown pool "gpu"/);
  });

  it("never stores a token: the schema has no place for one and strips unknown fields", () => {
    const withToken = { ...sampleJob(), token: "ghs_secret" };
    const parsed = parseFixJob(withToken);
    expect(parsed.ok && "token" in parsed.job).toBe(false);
  });
});
