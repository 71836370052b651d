import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import {
  jobMetricsKey,
  jobOutcomeSchema,
  outcomeIncrements,
  parseJobMetrics,
  recordJobOutcome,
} from "../../src/ops/job-metrics.js";
import { OpsMetrics } from "../../src/ops/metrics.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

describe("job metrics in Redis", () => {
  it("turns an outcome into cumulative bucket counts and reads them back", () => {
    const outcome = jobOutcomeSchema.parse({
      pool: "p150",
      state: "timed_out",
      phases: [{ name: "fix", ms: 31_000 }],
    });
    const { ints, floats } = outcomeIncrements(outcome);
    const hash: Record<string, string> = {};
    for (const [f, n] of [...ints, ...floats]) hash[f] = String(n);
    const snap = parseJobMetrics({ ...hash, garbage: "x", "phase_le|p150|fix|nope": "3" });
    expect(snap.outcomes).toEqual([{ pool: "p150", state: "timed_out", count: 1 }]);
    const fix = snap.phases[0]!;
    expect(fix.sumSeconds).toBe(31);
    expect(fix.buckets.find((b) => b.le === 30)?.count).toBe(0);
    expect(fix.buckets.find((b) => b.le === 60)?.count).toBe(1);
    expect(fix.buckets.find((b) => b.le === 3600)?.count).toBe(1);
  });

  it("rejects what would corrupt the counters, without throwing", async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const prefix = uniquePrefix("jm");
    try {
      const bad = [
        { pool: "nope", state: "succeeded" },
        { pool: "cpu", state: "running" },
        { pool: "cpu", state: "failed", phases: [{ name: "a|b", ms: 1 }] },
        { pool: "cpu", state: "failed", gates: { passed: 3, total: 2 } },
        { pool: "cpu", state: "failed", costUsd: -1 },
      ];
      for (const o of bad) {
        const r = await recordJobOutcome(redis, prefix, o as any);
        expect(r.ok, JSON.stringify(o)).toBe(false);
      }
      expect(await redis.exists(jobMetricsKey(prefix))).toBe(0);
    } finally {
      redis.disconnect();
      await dropPrefix(prefix);
    }
  });

  it("resolves with an error instead of throwing when Redis is away", async () => {
    const redis = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    redis.on("error", () => {});
    const r = await recordJobOutcome(redis, "x", { pool: "cpu", state: "succeeded" });
    expect(r.ok).toBe(false);
    redis.disconnect();
  });

  it("emits a valid histogram family (buckets, sum, count) in the exposition text", async () => {
    const m = new OpsMetrics({ processMetrics: false });
    const outcome = jobOutcomeSchema.parse({
      pool: "cpu",
      state: "succeeded",
      phases: [{ name: "pr", ms: 2_000 }],
    });
    const { ints, floats } = outcomeIncrements(outcome);
    const hash = Object.fromEntries([...ints, ...floats].map(([f, n]) => [f, String(n)]));
    m.apply({ redisUp: true, queues: [], workers: [], jobs: parseJobMetrics(hash) });
    const text = await m.render();
    expect(text).toContain("# TYPE autofix_phase_duration_seconds histogram");
    expect(text).toContain('autofix_phase_duration_seconds_bucket{pool="cpu",phase="pr",le="5"} 1');
    expect(text).toContain('autofix_phase_duration_seconds_count{pool="cpu",phase="pr"} 1');
    expect(text).toContain('autofix_phase_duration_seconds_sum{pool="cpu",phase="pr"} 2');
  });
});
