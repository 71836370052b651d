// Child process for bench/webhooks.mjs: serves webhooks on loopback either with the Autofix
// web app (real Redis, fake GitHub) or with a bare Probot app that only acknowledges.
// Usage: node webhook-server.mjs autofix|bare <fake-github-url> <redis-url> <prefix>
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { Writable } from "node:stream";
import { createNodeMiddleware, Probot, ProbotOctokit } from "probot";
import { POOL_NAMES } from "../../dist/src/config/pools.js";
import { JobQueues } from "../../dist/src/queue/queues.js";
import { createLogger } from "../../dist/src/shared/logger.js";
import { createTriggerDeps, registerTriggers } from "../../dist/src/triggers/index.js";

const [mode, githubUrl, redisUrl, prefix] = process.argv.slice(2);
const log = createLogger({ level: "warn", destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();
const probot = new Probot({
  appId: 1,
  privateKey,
  secret: process.env.BENCH_WEBHOOK_SECRET ?? "bench-secret",
  log,
  baseUrl: githubUrl,
  Octokit: ProbotOctokit.defaults((o) => ({ ...o, retry: { enabled: false }, throttle: { enabled: false } })),
});

let queues;
let appFn = () => {};
if (mode === "autofix") {
  queues = new JobQueues({ redis: redisUrl, prefix });
  await queues.queue("cpu").waitUntilReady();
  appFn = (app) =>
    registerTriggers(
      app,
      createTriggerDeps(
        {
          APP_ID: "1",
          githubWebUrl: "https://github.com",
          pools: [...POOL_NAMES],
          AUTOFIX_QUEUE_PREFIX: prefix,
        },
        queues,
        log,
      ),
    );
} else {
  // The baseline: Probot verifies the signature and acknowledges; one no-op handler.
  appFn = (app) => app.on("issue_comment.created", async () => {});
}
const middleware = await createNodeMiddleware(appFn, { probot });
const server = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.send?.({ port: server.address().port }));
process.on("message", async (m) => {
  if (m === "stop") {
    server.close();
    await queues?.close();
    process.exit(0);
  }
});
