import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpsHandler } from "../../src/ops/http.js";
import { OpsMetrics } from "../../src/ops/metrics.js";
import { JobQueues } from "../../src/queue/queues.js";
import { memoryLogger } from "../helpers/github.js";
import { TestRedisServer } from "./redis-server.js";

/** Poll until `check` passes or the time is up (Redis reconnects on its own schedule). */
async function eventually(check: () => Promise<boolean>, ms = 6_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe("readiness follows Redis", () => {
  let redis: TestRedisServer;
  let queues: JobQueues;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    redis = await TestRedisServer.start();
    queues = new JobQueues({ redis: redis.url, prefix: "ready" });
    await queues.queue("cpu").waitUntilReady();
    const handler = createOpsHandler({
      queues,
      pools: ["cpu"],
      metrics: new OpsMetrics({ processMetrics: false }),
      credentials: null,
      log: memoryLogger().log,
      readyTimeoutMs: 500,
    });
    server = createServer(async (req, res) => {
      if (!(await handler(req, res))) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await queues.close();
    await redis.stop();
  });

  const ready = async () => {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
  };

  it("passes, fails with a reason while Redis is down, and passes again when it is back", async () => {
    expect(await ready()).toEqual({ status: 200, body: { status: "ready" } });

    await redis.stop();
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("unavailable");
    expect(down.body.reason).toMatch(/^Redis is unreachable: /);
    // Liveness does not depend on Redis: the process is fine, only not ready.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // A scrape during the outage still answers, and says Redis is down.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^autofix_redis_up 0$/m);

    await redis.start();
    expect(await eventually(async () => (await ready()).status === 200)).toBe(true);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^autofix_redis_up 1$/m);
  });
});
