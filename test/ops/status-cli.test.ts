import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/run.js";
import { startHeartbeat } from "../../src/ops/heartbeat.js";
import { JobQueues } from "../../src/queue/queues.js";
import { sampleJob } from "../helpers/jobs.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { freePort } from "./redis-server.js";

const prefix = uniquePrefix("status");
const env = { REDIS_URL: TEST_REDIS_URL, AUTOFIX_QUEUE_PREFIX: prefix, AUTOFIX_POOLS: "cpu,t3k" };

function io(e: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env: e, cwd: process.cwd() };
  return { value, out, err };
}

const redis = new Redis(TEST_REDIS_URL);
const queues = new JobQueues({ redis, prefix });
afterAll(async () => {
  await queues.close();
  redis.disconnect();
  await dropPrefix(prefix);
});

describe("autofix status", () => {
  it("prints live workers (pools, cards, current job) and queue depths per pool", async () => {
    await queues.enqueue(sampleJob({ pool: "t3k", fingerprint: "fp-status-1" }));
    const hb = await startHeartbeat(redis, prefix, {
      host: "tt-t3k-01",
      id: "tt-t3k-01:99",
      pools: ["t3k"],
      cards: ["0", "1", "2", "3"],
      currentJob: () => "t3k/abc",
      intervalMs: 1_000,
      ttlSeconds: 10,
    });
    try {
      const t = io(env);
      const code = await runCli(["status"], t.value);
      expect(t.err).toEqual([]);
      expect(code).toBe(0);
      const text = t.out.join("\n");
      expect(text).toMatch(/workers: 1 alive/);
      expect(text).toMatch(/tt-t3k-01\s+tt-t3k-01:99\s+t3k\s+0,1,2,3\s+t3k\/abc/);
      expect(text).toMatch(/^\s+t3k\s+1\s+0\s+0\s+0\s+0\s+\S+\s+1$/m);
      expect(text).toMatch(/^\s+cpu\s+0\s+0\s+0\s+0\s+0\s+-\s+0$/m);

      const j = io(env);
      expect(await runCli(["status", "--json"], j.value)).toBe(0);
      const report = JSON.parse(j.out.join("\n"));
      expect(report.workers).toHaveLength(1);
      expect(report.workers[0]).toMatchObject({ host: "tt-t3k-01", pools: ["t3k"], currentJob: "t3k/abc" });
      expect(report.queues.find((q: any) => q.pool === "t3k").waiting).toBe(1);
    } finally {
      await hb.stop();
    }
    const after = io(env);
    expect(await runCli(["status"], after.value)).toBe(0);
    expect(after.out[0]).toMatch(/workers: none alive/);
  });

  it("exits 1 naming the address and the cause when Redis does not answer, password redacted", async () => {
    const port = await freePort();
    const t = io({ REDIS_URL: `redis://:s3cret-redis-pass@127.0.0.1:${port}` });
    expect(await runCli(["status"], t.value)).toBe(1);
    expect(t.err).toEqual([
      `autofix status: cannot reach Redis at redis://:[REDACTED]@127.0.0.1:${port}: connection refused at 127.0.0.1:${port}`,
    ]);
    expect(t.err.join("\n")).not.toContain("s3cret-redis-pass");
  });
});
