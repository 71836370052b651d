#!/usr/bin/env node
/**
 * Opens the queue dashboard in a real headless browser and saves a screenshot: the web
 * application (triggers + operations, from dist/) in Probot's node middleware on a free port,
 * a few jobs on some pool queues of a throw-away prefix, then the system's chromium (driven by
 * playwright-core, which never downloads a browser) signs in with HTTP Basic credentials,
 * waits for the queue cards and saves a screenshot. Not part of the test suite (it needs a
 * browser); run it by hand after a change to the dashboard:
 *
 *   npm run build && node bench/dashboard-screenshot.mjs [--out dashboard.png] [--browser PATH]
 *
 * (Chromium's own --screenshot mode cannot do it: with credentials in the page's URL the
 * dashboard's fetch() calls are refused, and it stays on "Loading".) Needs a Redis at REDIS_URL
 * (default redis://127.0.0.1:6379). Prints the screenshot's path; exits 1 when the page does
 * not show every pool with its job count, or when an anonymous visit is not refused.
 */
import { existsSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const dist = (p) => join(here, "../dist/src", p);
if (!existsSync(dist("ops/http.js"))) {
  console.error("dist/ is missing or stale: run `npm run build` first");
  process.exit(2);
}
const { values } = parseArgs({
  options: {
    out: { type: "string", default: join(tmpdir(), "autofix-dashboard.png") },
    // Debian's /usr/bin/chromium is a shell wrapper; playwright needs the binary itself.
    browser: { type: "string", default: "/usr/lib/chromium/chromium" },
  },
});

const { chromium } = await import("playwright-core");
const { Probot, createNodeMiddleware } = await import("probot");
const { loadSettings } = await import(dist("config/env.js"));
const { JobQueues } = await import(dist("queue/queues.js"));
const { OpsMetrics } = await import(dist("ops/metrics.js"));
const { createApp } = await import(dist("web/app.js"));
const { webRegistrations } = await import(dist("web/registrations.js"));
const { FIX_JOB_VERSION } = await import(dist("contracts/fix-job.js"));
const { createLogger } = await import(dist("shared/logger.js"));

const USER = "admin";
const PASSWORD = `bench-${Math.random().toString(36).slice(2)}-pass`;
const prefix = `autofix-bench-${process.pid}`;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const loaded = loadSettings(
  {
    REDIS_URL: redisUrl,
    AUTOFIX_QUEUE_PREFIX: prefix,
    AUTOFIX_DASHBOARD_USER: USER,
    AUTOFIX_DASHBOARD_PASSWORD: PASSWORD,
    LOG_LEVEL: "warn",
  },
  "web",
);
if (!loaded.ok) throw new Error(loaded.problems.join("; "));
const settings = loaded.settings;
const log = createLogger({ level: "warn", name: "bench" });
const queues = new JobQueues({ redis: redisUrl, prefix });
await Promise.all(settings.pools.map((p) => queues.queue(p).waitUntilReady()));

const job = (pool, n) => ({
  version: FIX_JOB_VERSION,
  source: "comment",
  repository: { owner: "tenstorrent", name: "tt-metal", installationId: 1, defaultBranch: "main" },
  target: { kind: "issue", number: n, headSha: "a".repeat(40), headRef: "main" },
  request: {
    deterministic: true,
    prompt: `fix #${n}`,
    url: "https://github.com/tenstorrent/tt-metal/actions/runs/1",
  },
  pool,
  fingerprint: `bench:${pool}:${n}`,
  requestedBy: "octocat",
  createdAt: new Date().toISOString(),
});
for (const [pool, n] of [
  ["n150", 3],
  ["t3k", 2],
  ["cpu", 1],
]) {
  for (let i = 1; i <= n; i++) await queues.enqueue(job(pool, i));
}

const probot = new Probot({ appId: 1, privateKey: "unused", secret: "bench-webhook-secret", log });
const middleware = await createNodeMiddleware(
  createApp({ settings, queues, log }, webRegistrations(new OpsMetrics({ processMetrics: false }))),
  { probot },
);
const server = createServer((req, res) => middleware(req, res, () => res.writeHead(404).end()));
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const port = server.address().port;

const out = resolve(values.out);
const base = `http://127.0.0.1:${port}`;
const expected = { cpu: 1, n150: 3, t3k: 2 };
let code = 0;
const browser = await chromium.launch({
  executablePath: values.browser,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  // Without credentials: the challenge, and a browser that has none to offer gets no page.
  const plain = await fetch(`${base}/admin/queues`);
  console.log(`anonymous GET: ${plain.status} ${plain.headers.get("www-authenticate")}`);
  const anon = await browser.newContext();
  const visit = await (await anon.newPage())
    .goto(`${base}/admin/queues`)
    .then((r) => `status ${r?.status()}`)
    .catch((e) => e.message.split("\n")[0]);
  console.log(`anonymous browser visit: ${visit}`);
  if (plain.status !== 401 || !/ERR_INVALID_AUTH_CREDENTIALS|status 401/.test(visit)) code = 1;
  await anon.close();

  const ctx = await browser.newContext({
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 1280, height: 900 },
  });
  const page = await ctx.newPage();
  // The page asks for web fonts; a test machine may have no route out, so fail those at once.
  await page.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  const started = Date.now();
  await page.goto(`${base}/admin/queues`);
  for (const [pool, n] of Object.entries(expected)) {
    await page
      .getByText(`${n} Job${n === 1 ? "" : "s"}`)
      .first()
      .waitFor({ timeout: 15_000 });
    await page.getByText(pool, { exact: true }).first().waitFor({ timeout: 15_000 });
  }
  const missing = [];
  for (const pool of settings.pools) {
    if (!(await page.getByText(pool, { exact: true }).first().isVisible())) missing.push(pool);
  }
  rmSync(out, { force: true });
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out} (${statSync(out).size} bytes, ${Date.now() - started} ms)`);
  if (missing.length > 0) {
    console.error(`pools missing from the page: ${missing.join(", ")}`);
    code = 1;
  } else console.log(`the page shows all ${settings.pools.length} pool queues`);
} catch (err) {
  console.error(`the dashboard did not render: ${err.message}`);
  code = 1;
} finally {
  await browser.close();
  server.close();
  for (const p of settings.pools)
    await queues
      .queue(p)
      .obliterate({ force: true })
      .catch(() => {});
  await queues.close();
}
process.exit(code);
