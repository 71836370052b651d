import { createServer, type Server } from "node:http";
import { createNodeMiddleware } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSettings, type Settings } from "../../src/config/env.js";
import { startHeartbeat } from "../../src/ops/heartbeat.js";
import { recordJobOutcome } from "../../src/ops/job-metrics.js";
import { OpsMetrics } from "../../src/ops/metrics.js";
import { JobQueues } from "../../src/queue/queues.js";
import { createApp } from "../../src/web/app.js";
import { webRegistrations } from "../../src/web/registrations.js";
import { examplePayload, memoryLogger, testProbot } from "../helpers/github.js";
import { sampleJob } from "../helpers/jobs.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

const USER = "ops-admin";
const PASSWORD = "correct horse battery staple";

interface Running {
  base: string;
  queues: JobQueues;
  prefix: string;
  probot: ReturnType<typeof testProbot>;
  close: () => Promise<void>;
}

/** The web process's application (triggers + operations) in Probot's node middleware, over real HTTP. */
async function startWeb(env: Record<string, string>): Promise<Running> {
  const prefix = uniquePrefix("ops");
  const loaded = loadSettings(
    { REDIS_URL: TEST_REDIS_URL, AUTOFIX_QUEUE_PREFIX: prefix, AUTOFIX_POOLS: "cpu,n150", ...env },
    "web",
  );
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const settings: Settings = loaded.settings;
  const { log } = memoryLogger();
  const queues = new JobQueues({ redis: TEST_REDIS_URL, prefix });
  await queues.queue("cpu").waitUntilReady();
  const probot = testProbot(log);
  const middleware = await createNodeMiddleware(
    createApp({ settings, queues, log }, webRegistrations(new OpsMetrics({ processMetrics: false }))),
    { probot },
  );
  const server: Server = createServer((req, res) => {
    void middleware(req, res, () => res.writeHead(404).end("not found"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    base: `http://127.0.0.1:${port}`,
    queues,
    prefix,
    probot,
    close: async () => {
      await new Promise((r) => server.close(r));
      await queues.close();
      await dropPrefix(prefix);
    },
  };
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** One sample's value from the exposition text (undefined when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? "").split(",").filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

describe("web process: dashboard behind Basic auth", () => {
  let web: Running;
  beforeAll(async () => {
    web = await startWeb({ AUTOFIX_DASHBOARD_USER: USER, AUTOFIX_DASHBOARD_PASSWORD: PASSWORD });
  });
  afterAll(() => web.close());

  it("refuses requests without credentials: 401 with a Basic challenge, on the page, the API and the assets", async () => {
    for (const path of [
      "/admin/queues",
      "/admin/queues/api/queues",
      "/admin/queues/static/favicon-32x32.png",
    ]) {
      const res = await fetch(`${web.base}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="autofix admin"/);
      expect(await res.text()).not.toMatch(/cpu|n150/);
    }
  });

  it("refuses wrong credentials: wrong password, wrong user, malformed header", async () => {
    for (const auth of [
      basic(USER, "wrong password!!"),
      basic("someone", PASSWORD),
      basic(USER, ""),
      `Bearer ${PASSWORD}`,
      "Basic !!!notbase64",
    ]) {
      const res = await fetch(`${web.base}/admin/queues/api/queues`, { headers: { authorization: auth } });
      expect(res.status, auth).toBe(401);
    }
  });

  it("serves the dashboard and every pool queue with the right credentials", async () => {
    await web.queues.enqueue(sampleJob({ pool: "n150", fingerprint: "fp-dashboard-1" }));
    const page = await fetch(`${web.base}/admin/queues`, {
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain("Autofix queues");

    const api = await fetch(`${web.base}/admin/queues/api/queues?activeQueue=n150&status=waiting&page=1`, {
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: Array<{ name: string; counts: Record<string, number> }> };
    expect(body.queues.map((q) => q.name).sort()).toEqual(["cpu", "n150"]);
    expect(body.queues.find((q) => q.name === "n150")?.counts.waiting).toBe(1);
  });

  it("refuses a cross-site state-changing request even with credentials", async () => {
    const res = await fetch(`${web.base}/admin/queues/api/queues/n150/pause`, {
      method: "PUT",
      headers: {
        authorization: basic(USER, PASSWORD),
        origin: "https://evil.example",
        "sec-fetch-site": "cross-site",
      },
    });
    expect(res.status).toBe(403);
    expect(await web.queues.queue("n150").isPaused()).toBe(false);
  });

  it("liveness answers without Redis work; unknown paths still 404", async () => {
    const res = await fetch(`${web.base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    expect((await fetch(`${web.base}/admin`)).status).toBe(404);
  });
});

describe("web process: dashboard off without credentials", () => {
  let web: Running;
  beforeAll(async () => {
    web = await startWeb({});
  });
  afterAll(() => web.close());

  it("answers 404 on the dashboard paths, with or without an Authorization header", async () => {
    expect((await fetch(`${web.base}/admin/queues`)).status).toBe(404);
    const res = await fetch(`${web.base}/admin/queues/api/queues`, {
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(res.status).toBe(404);
  });
});

describe("web process: /metrics", () => {
  let web: Running;
  beforeAll(async () => {
    web = await startWeb({});
  });
  afterAll(() => web.close());

  const scrape = async () => {
    const res = await fetch(`${web.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    return res.text();
  };

  it("counts a job's outcome, phases, gates and spend once a worker records it", async () => {
    const before = await scrape();
    expect(
      sample(before, "autofix_job_outcomes_total", { pool: "n150", state: "succeeded" }),
    ).toBeUndefined();

    const recorded = await recordJobOutcome(web.queues.connection, web.prefix, {
      pool: "n150",
      state: "succeeded",
      phases: [
        { name: "reproduce", ms: 45_000 },
        { name: "fix", ms: 250_000 },
      ],
      gates: { passed: 3, total: 4 },
      tokens: 120_000,
      costUsd: 1.5,
    });
    expect(recorded).toEqual({ ok: true });
    await recordJobOutcome(web.queues.connection, web.prefix, { pool: "n150", state: "failed" });

    const after = await scrape();
    expect(sample(after, "autofix_job_outcomes_total", { pool: "n150", state: "succeeded" })).toBe(1);
    expect(sample(after, "autofix_job_outcomes_total", { pool: "n150", state: "failed" })).toBe(1);
    expect(sample(after, "autofix_phase_duration_seconds_count", { pool: "n150", phase: "fix" })).toBe(1);
    expect(sample(after, "autofix_phase_duration_seconds_sum", { pool: "n150", phase: "fix" })).toBe(250);
    expect(
      sample(after, "autofix_phase_duration_seconds_bucket", { pool: "n150", phase: "fix", le: "120" }),
    ).toBe(0);
    expect(
      sample(after, "autofix_phase_duration_seconds_bucket", { pool: "n150", phase: "fix", le: "300" }),
    ).toBe(1);
    expect(
      sample(after, "autofix_phase_duration_seconds_bucket", { pool: "n150", phase: "fix", le: "+Inf" }),
    ).toBe(1);
    expect(sample(after, "autofix_gate_checks_total", { pool: "n150" })).toBe(4);
    expect(sample(after, "autofix_gate_pass_ratio", { pool: "n150" })).toBe(0.75);
    expect(sample(after, "autofix_tokens_total", { pool: "n150" })).toBe(120_000);
    expect(sample(after, "autofix_cost_usd_total", { pool: "n150" })).toBe(1.5);
    expect(sample(after, "autofix_redis_up")).toBe(1);
  });

  it("shows queue depth and the oldest waiting job's age per pool at scrape time", async () => {
    await web.queues.enqueue(sampleJob({ pool: "cpu", fingerprint: "fp-metrics-1" }));
    await web.queues.enqueue(sampleJob({ pool: "cpu", fingerprint: "fp-metrics-2" }));
    const text = await scrape();
    expect(sample(text, "autofix_queue_depth", { pool: "cpu" })).toBe(2);
    expect(sample(text, "autofix_queue_jobs", { pool: "cpu", state: "waiting" })).toBe(2);
    expect(sample(text, "autofix_queue_depth", { pool: "n150" })).toBe(0);
    expect(sample(text, "autofix_queue_oldest_waiting_seconds", { pool: "cpu" })).toBeGreaterThanOrEqual(0);
    expect(sample(text, "autofix_queue_oldest_waiting_seconds", { pool: "n150" })).toBe(0);
  });

  it("lists live workers by host and pool from their heartbeats", async () => {
    const hb = await startHeartbeat(web.queues.connection, web.prefix, {
      host: "tt-host-7",
      id: "tt-host-7:1234",
      pools: ["n150", "cpu"],
      cards: ["0", "1"],
      currentJob: () => "n150/42",
      intervalMs: 1_000,
      ttlSeconds: 5,
    });
    let text = await scrape();
    expect(
      sample(text, "autofix_worker_up", { host: "tt-host-7", worker: "tt-host-7:1234", pool: "n150" }),
    ).toBe(1);
    expect(sample(text, "autofix_workers", { pool: "cpu" })).toBe(1);
    expect(sample(text, "autofix_worker_cards", { host: "tt-host-7", worker: "tt-host-7:1234" })).toBe(2);
    expect(sample(text, "autofix_worker_busy", { host: "tt-host-7", worker: "tt-host-7:1234" })).toBe(1);
    await hb.stop();
    text = await scrape();
    expect(
      sample(text, "autofix_worker_up", { host: "tt-host-7", worker: "tt-host-7:1234", pool: "n150" }),
    ).toBeUndefined();
    expect(sample(text, "autofix_workers", { pool: "cpu" })).toBe(0);
  });

  it("counts webhook deliveries by event and decision", async () => {
    const payload = examplePayload("issue_comment", "created");
    payload.comment.body = "thanks, looks good";
    await web.probot.receive({ id: `ops-${Date.now()}`, name: "issue_comment", payload: payload as any });
    const text = await scrape();
    expect(
      sample(text, "autofix_webhook_deliveries_total", {
        event: "issue_comment.created",
        decision: "ignored",
      }),
    ).toBe(1);
  });
});
