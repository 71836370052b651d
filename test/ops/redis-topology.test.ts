import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSettings, redisEndpoint } from "../../src/config/env.js";
import { hashTagOf, parseHostPorts } from "../../src/config/redis-topology.js";
import { listWorkers, startHeartbeat } from "../../src/ops/heartbeat.js";
import { readJobMetrics, recordJobOutcome } from "../../src/ops/job-metrics.js";
import { JobQueues } from "../../src/queue/queues.js";
import { checkRedis, createRedis, productionWarnings, redisProductionChecks } from "../../src/queue/redis.js";
import { sampleJob } from "../helpers/jobs.js";
import { freePort, TestRedisServer } from "./redis-server.js";

describe("Redis topology settings", () => {
  it("parses host:port lists, IPv6 in brackets, and names what is wrong", () => {
    expect(parseHostPorts("a:26379, b.example:26380 [::1]:7000")).toEqual({
      ok: true,
      value: [
        { host: "a", port: 26379 },
        { host: "b.example", port: 26380 },
        { host: "::1", port: 7000 },
      ],
    });
    expect(parseHostPorts("a:26379,b")).toEqual({ ok: false, error: '"b" is not host:port' });
    expect(parseHostPorts("a:99999")).toMatchObject({ ok: false });
  });

  it("finds the Cluster hash tag the way Redis does", () => {
    expect(hashTagOf("{autofix}")).toBe("autofix");
    expect(hashTagOf("prod-{af}-x")).toBe("af");
    expect(hashTagOf("autofix")).toBeNull();
    expect(hashTagOf("{}autofix")).toBeNull();
    expect(hashTagOf("{autofix")).toBeNull();
  });

  it("Cluster mode needs a hash-tagged prefix: a clear start-up error otherwise", () => {
    const bad = loadSettings({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:7000" }, "web");
    expect(bad).toEqual({
      ok: false,
      problems: [expect.stringMatching(/^AUTOFIX_QUEUE_PREFIX: "autofix" has no hash tag.*use \{autofix\}$/)],
    });
    const good = loadSettings(
      { REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:7000", AUTOFIX_QUEUE_PREFIX: "{autofix}" },
      "web",
    );
    expect(good.ok && good.settings.redisTopology).toEqual({
      kind: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7000 },
      ],
    });
  });

  it("the topology is a value the caller passes: loading settings changes no connection built from a bare URL", () => {
    const loaded = loadSettings(
      {
        REDIS_CLUSTER_NODES: "127.0.0.1:1",
        AUTOFIX_QUEUE_PREFIX: "{autofix}",
        REDIS_URL: "redis://127.0.0.1:1",
      },
      "web",
    );
    expect(loaded.ok && redisEndpoint(loaded.settings)).toEqual({
      url: "redis://127.0.0.1:1",
      topology: { kind: "cluster", nodes: [{ host: "127.0.0.1", port: 1 }] },
    });
    const plain = createRedis("redis://127.0.0.1:1", "producer");
    expect((plain as unknown as { isCluster?: boolean }).isCluster).toBeFalsy();
    plain.disconnect();
  });

  it("Sentinel needs the master name; Sentinel and Cluster are exclusive; dashboard credentials come in pairs", () => {
    expect(loadSettings({ REDIS_SENTINELS: "s1:26379" }, "web")).toEqual({
      ok: false,
      problems: [expect.stringMatching(/^REDIS_SENTINEL_NAME: missing/)],
    });
    expect(loadSettings({ REDIS_SENTINELS: "s1:26379", REDIS_CLUSTER_NODES: "c:7000" }, "web")).toMatchObject(
      {
        ok: false,
        problems: [expect.stringMatching(/set one of them, not both/)],
      },
    );
    const s = loadSettings({ REDIS_SENTINELS: "s1:26379,s2:26379", REDIS_SENTINEL_NAME: "mymaster" }, "web");
    expect(s.ok && s.settings.redisTopology).toMatchObject({ kind: "sentinel", name: "mymaster" });
    expect(loadSettings({ AUTOFIX_DASHBOARD_USER: "admin" }, "web")).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/set both/)],
    });
    expect(
      loadSettings({ AUTOFIX_DASHBOARD_USER: "admin", AUTOFIX_DASHBOARD_PASSWORD: "short" }, "web"),
    ).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/AUTOFIX_DASHBOARD_PASSWORD: must be at least 12/)],
    });
  });
});

describe("Redis production checks", () => {
  it("warns about eviction and missing persistence, and says nothing when both are right", () => {
    expect(
      productionWarnings({
        memory: { maxmemory_policy: "noeviction" },
        persistence: { aof_enabled: "1" },
        save: "",
      }),
    ).toEqual([]);
    expect(
      productionWarnings({
        memory: { maxmemory_policy: "noeviction" },
        persistence: { aof_enabled: "0" },
        save: "3600 1",
      }),
    ).toEqual([]);
    const bad = productionWarnings({
      memory: { maxmemory_policy: "allkeys-lru" },
      persistence: { aof_enabled: "0" },
      save: "",
    });
    expect(bad).toHaveLength(2);
    expect(bad[0]).toMatch(/maxmemory-policy is allkeys-lru; BullMQ needs noeviction/);
    expect(bad[1]).toMatch(/persistence is off/);
  });

  it("reads a live Redis: an evicting, unpersisted server gets both warnings; a fixed one none", async () => {
    const server = await TestRedisServer.start(["--maxmemory-policy", "allkeys-lru"]);
    const redis = new Redis(server.url);
    try {
      const warnings = await redisProductionChecks(redis);
      expect(warnings).toEqual([
        expect.stringMatching(/maxmemory-policy is allkeys-lru/),
        expect.stringMatching(/persistence is off/),
      ]);
      await redis.config("SET", "maxmemory-policy", "noeviction");
      await redis.config("SET", "appendonly", "yes");
      expect(await redisProductionChecks(redis)).toEqual([]);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});

/** Start a child redis-server with arguments and wait until it answers PING on `port`. */
async function spawnRedis(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", args, { stdio: "ignore" });
  const probe = new Redis(port, "127.0.0.1", {
    lazyConnect: true,
    retryStrategy: () => 50,
    maxRetriesPerRequest: 0,
  });
  probe.on("error", () => {});
  for (let i = 0; i < 100; i++) {
    if ((await probe.ping().catch(() => null)) === "PONG") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  probe.disconnect();
  return child;
}

describe("Redis Cluster (one node owning every slot)", () => {
  let port: number;
  let child: ChildProcess;
  beforeAll(async () => {
    port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "autofix-cluster-"));
    child = await spawnRedis(
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-announce-ip",
        "127.0.0.1",
      ].concat([
        "--cluster-config-file",
        join(dir, "nodes.conf"),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ]),
      port,
    );
    const admin = new Redis(port, "127.0.0.1");
    await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
    for (let i = 0; i < 100; i++) {
      if (/cluster_state:ok/.test(String(await admin.call("CLUSTER", "INFO")))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    admin.disconnect();
  });
  afterAll(() => {
    child.kill("SIGKILL");
  });

  it("queues, job metrics and heartbeats work through a Cluster client with a hash-tagged prefix", async () => {
    const loaded = loadSettings(
      { REDIS_CLUSTER_NODES: `127.0.0.1:${port}`, AUTOFIX_QUEUE_PREFIX: "{autofix-test}" },
      "web",
    );
    if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
    const endpoint = redisEndpoint(loaded.settings);
    expect(await checkRedis(endpoint)).toBeNull();
    const redis = createRedis(endpoint, "worker");
    expect((redis as unknown as { isCluster: boolean }).isCluster).toBe(true);
    const queues = new JobQueues({ redis, prefix: "{autofix-test}" });
    try {
      const { jobId } = await queues.enqueue(sampleJob({ pool: "cpu", fingerprint: "fp-cluster" }));
      expect((await queues.queue("cpu").getJobCounts("waiting")).waiting).toBe(1);
      expect(await queues.findActive("fp-cluster", ["cpu"])).toEqual({ pool: "cpu", jobId });
      expect(
        await recordJobOutcome(redis, "{autofix-test}", { pool: "cpu", state: "partial", tokens: 5 }),
      ).toEqual({
        ok: true,
      });
      expect((await readJobMetrics(redis, "{autofix-test}")).outcomes).toEqual([
        { pool: "cpu", state: "partial", count: 1 },
      ]);
      const hb = await startHeartbeat(redis, "{autofix-test}", {
        host: "h",
        pools: ["cpu"],
        cards: [],
        intervalMs: 1000,
        ttlSeconds: 5,
      });
      expect(await listWorkers(redis, "{autofix-test}")).toHaveLength(1);
      await hb.stop();
      expect(await redisProductionChecks(redis)).toEqual([
        expect.stringMatching(new RegExp(`persistence is off.* on 127\\.0\\.0\\.1:${port}$`)),
      ]);
    } finally {
      await queues.close();
      redis.disconnect();
    }
  });
});

describe("Redis Sentinel", () => {
  let master: TestRedisServer;
  let sentinel: ChildProcess;
  let sentinelPort: number;
  beforeAll(async () => {
    master = await TestRedisServer.start();
    sentinelPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "autofix-sentinel-"));
    const conf = join(dir, "sentinel.conf");
    writeFileSync(
      conf,
      `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor autofix-master 127.0.0.1 ${master.port} 1\n`,
    );
    sentinel = await spawnRedis([conf, "--sentinel"], sentinelPort);
  });
  afterAll(async () => {
    sentinel.kill("SIGKILL");
    await master.stop();
  });

  it("connects to the master the sentinels name", async () => {
    const loaded = loadSettings(
      {
        REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
        REDIS_SENTINEL_NAME: "autofix-master",
        // REDIS_URL's host is not used in sentinel mode: this port has nothing listening.
        REDIS_URL: "redis://127.0.0.1:1",
      },
      "web",
    );
    if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
    const redis = createRedis(redisEndpoint(loaded.settings), "worker");
    try {
      await redis.set("autofix-sentinel-probe", "1");
      const direct = new Redis(master.url);
      expect(await direct.get("autofix-sentinel-probe")).toBe("1");
      direct.disconnect();
    } finally {
      redis.disconnect();
    }
  });
});

describe("empty settings", () => {
  it("treats NAME= (empty) as not set for the dashboard and Redis topology settings", () => {
    const s = loadSettings(
      {
        AUTOFIX_DASHBOARD_USER: "",
        AUTOFIX_DASHBOARD_PASSWORD: " ",
        REDIS_SENTINELS: "",
        REDIS_CLUSTER_NODES: "",
      },
      "web",
    );
    expect(s.ok && s.settings.redisTopology).toEqual({ kind: "standalone" });
    expect(s.ok && s.settings.AUTOFIX_DASHBOARD_USER).toBeUndefined();
  });
});
