import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { listWorkers, startHeartbeat, workerKey } from "../../src/ops/heartbeat.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

const prefix = uniquePrefix("hb");
const clients: Redis[] = [];
function client(): Redis {
  const c = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  c.on("error", () => {});
  clients.push(c);
  return c;
}

afterAll(async () => {
  await dropPrefix(prefix);
  for (const c of clients) c.disconnect();
});

describe("worker heartbeats", () => {
  it("lists a live worker with its pools, cards and current job, refreshed every interval", async () => {
    const redis = client();
    let job: string | null = null;
    const hb = await startHeartbeat(redis, prefix, {
      host: "tt-a",
      id: "tt-a:1",
      pools: ["n300"],
      cards: ["0"],
      currentJob: () => job,
      intervalMs: 100,
      ttlSeconds: 2,
    });
    let [w] = await listWorkers(redis, prefix);
    expect(w).toMatchObject({ id: "tt-a:1", host: "tt-a", pools: ["n300"], cards: ["0"], currentJob: null });
    job = "n300/17";
    await new Promise((r) => setTimeout(r, 250));
    [w] = await listWorkers(redis, prefix);
    expect(w?.currentJob).toBe("n300/17");
    expect(await redis.ttl(workerKey(prefix, "tt-a:1"))).toBeGreaterThan(0);
    await hb.stop();
    expect(await listWorkers(redis, prefix)).toEqual([]);
  });

  it("expires a worker that stops refreshing (its process died) after the TTL", async () => {
    const workerSide = client();
    const reader = client();
    await startHeartbeat(workerSide, prefix, {
      host: "tt-b",
      id: "tt-b:2",
      pools: ["cpu"],
      cards: [],
      intervalMs: 200,
      ttlSeconds: 1,
    });
    expect((await listWorkers(reader, prefix)).map((w) => w.id)).toContain("tt-b:2");
    // The process dies: its connection is gone and nothing refreshes the key any more.
    workerSide.disconnect();
    await new Promise((r) => setTimeout(r, 500));
    expect((await listWorkers(reader, prefix)).map((w) => w.id)).toContain("tt-b:2");
    await new Promise((r) => setTimeout(r, 900));
    expect((await listWorkers(reader, prefix)).map((w) => w.id)).not.toContain("tt-b:2");
  });

  it("refuses a TTL that live workers would outlast between beats", async () => {
    await expect(
      startHeartbeat(client(), prefix, { host: "h", pools: [], cards: [], intervalMs: 5_000, ttlSeconds: 2 }),
    ).rejects.toThrow(/ttlSeconds/);
  });
});
