import { run } from "probot";
import { formatProblems, loadSettings, redisEndpoint } from "../config/env.js";
import { OpsMetrics } from "../ops/metrics.js";
import { JobQueues } from "../queue/queues.js";
import { checkRedis, redisProductionChecks } from "../queue/redis.js";
import { createLogger } from "../shared/logger.js";
import { redact } from "../shared/redact.js";
import {
  drainerOctokits,
  Outbox,
  OutboxDrainer,
  OutboxSweeper,
  queueJobState,
} from "../status/outbox/index.js";
import { createAppGitHubFactory } from "../worker/github.js";
import { createApp } from "./app.js";
import { webRegistrations } from "./registrations.js";

/**
 * `npm start`: the web process. Validates the environment, checks Redis, then hands over to
 * Probot's runner, which serves webhooks, or the app-registration flow when APP_ID and the
 * private key are not set yet (development only).
 */
async function main(): Promise<void> {
  const loaded = loadSettings(process.env, "web");
  if (!loaded.ok) {
    console.error(formatProblems("Autofix cannot start; fix these settings", loaded.problems));
    process.exit(2);
  }
  const settings = loaded.settings;
  const redis = redisEndpoint(settings);
  const redisProblem = await checkRedis(redis);
  if (redisProblem) {
    console.error(
      formatProblems("Autofix cannot start", [`REDIS_URL: unreachable (${redact(redisProblem)})`]),
    );
    process.exit(2);
  }
  const log = createLogger({ level: settings.LOG_LEVEL, name: "autofix-web" });
  const queues = new JobQueues({ redis, prefix: settings.AUTOFIX_QUEUE_PREFIX });
  await Promise.all(settings.pools.map((p) => queues.queue(p).waitUntilReady()));
  log.info(
    { redis: settings.redisTopology.kind, dashboard: !!settings.AUTOFIX_DASHBOARD_USER },
    "operations: /healthz, /readyz, /metrics, /admin/queues (when dashboard credentials are set)",
  );
  // In development a Redis without persistence is expected: the checks are a debug line there.
  for (const warning of await redisProductionChecks(queues.connection)) {
    if (settings.production) log.warn({ check: "redis" }, `Redis is not set up for production: ${warning}`);
    else log.debug({ check: "redis" }, `Redis is not set up for production: ${warning}`);
  }

  // Probot would use REDIS_URL to cluster its Octokit throttling through Redis, which would
  // make every GitHub call depend on Redis. Throttling stays in-process; Redis is for jobs.
  const probotEnv = { ...process.env, REDIS_URL: undefined, LOG_FORMAT: process.env.LOG_FORMAT ?? "json" };
  // The outbox of GitHub writes (src/status/outbox): the webhook handlers put status comments,
  // replies and reactions there; this drainer (and every worker's) delivers them at the rate
  // GitHub allows per installation; the sweeper ends the comments of jobs that were lost.
  const outbox = new Outbox({ redis: queues.connection, prefix: settings.AUTOFIX_QUEUE_PREFIX });
  const outboxLog = log.child({ name: "outbox" });
  const drainer =
    settings.APP_ID && settings.privateKey
      ? new OutboxDrainer({
          outbox,
          octokitFor: drainerOctokits(
            createAppGitHubFactory({
              appId: settings.APP_ID,
              privateKey: settings.privateKey,
              githubApiUrl: settings.githubApiUrl,
              logger: outboxLog,
              throttle: false,
            }),
          ),
          log: outboxLog,
        })
      : null;
  if (!drainer)
    log.warn("no APP_ID and private key yet: GitHub writes wait in the outbox until the app is registered");
  drainer?.start();
  const sweeper = new OutboxSweeper({ outbox, jobState: queueJobState(queues), log: outboxLog });
  sweeper.start();

  const server = await run(createApp({ settings, queues, log, outbox }, webRegistrations(new OpsMetrics())), {
    env: probotEnv,
    log,
  });

  const stop = async (signal: string) => {
    log.info({ signal }, "stopping web process");
    await server.stop().catch(() => {});
    await sweeper.stop().catch(() => {});
    await drainer?.stop().catch(() => {});
    await queues.close().catch(() => {});
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  console.error(redact(`Autofix web process failed: ${(err as Error).stack ?? String(err)}`));
  process.exit(1);
});
