import type { IncomingMessage, ServerResponse } from "node:http";
import type { Redis } from "ioredis";
import type { JobQueues } from "../queue/queues.js";
import { withTimeout } from "../queue/redis.js";
import type { Logger } from "../shared/logger.js";
import { redact } from "../shared/redact.js";
import type { BasicCredentials } from "./auth.js";
import { createDashboard, type DashboardHandler, isDashboardPath } from "./dashboard.js";
import { type OpsMetrics, QUEUE_STATES, type QueueSource, scrape } from "./metrics.js";

/** Readiness: can this process enqueue right now? Resolves to a reason when not. */
export async function readiness(redis: Redis, timeoutMs = 1_000): Promise<string | null> {
  try {
    const pong = await withTimeout(redis.ping(), timeoutMs, "Redis PING");
    return pong === "PONG" ? null : `Redis answered ${String(pong)} to PING`;
  } catch (err) {
    return `Redis is unreachable: ${(err as Error).message}`;
  }
}

/** The queue side of a scrape, from the web process's queues. */
export function queueSource(queues: JobQueues, pools: readonly string[]): QueueSource {
  return {
    pools,
    counts: (pool) => queues.queue(pool).getJobCounts(...QUEUE_STATES),
    async oldestWaiting(pool) {
      const jobs = await queues.queue(pool).getJobs(["waiting", "prioritized"], 0, 199, true);
      const times = jobs.map((j) => j?.timestamp).filter((t): t is number => typeof t === "number");
      return times.length > 0 ? Math.min(...times) : null;
    },
  };
}

export interface OpsHttpDeps {
  queues: JobQueues;
  pools: readonly string[];
  metrics: OpsMetrics;
  /** Null turns the dashboard off: its paths answer 404 like any unknown path. */
  credentials: BasicCredentials | null;
  log: Logger;
  readyTimeoutMs?: number;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res
    .writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
    .end(JSON.stringify(body));
}

/**
 * The operations endpoints as one Probot HTTP handler: /healthz (the process is alive),
 * /readyz (it can reach Redis, so webhooks can be enqueued), /metrics (Prometheus) and the
 * queue dashboard under /admin/queues. Returns false for every other path.
 */
export function createOpsHandler(
  deps: OpsHttpDeps,
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const redis = deps.queues.connection;
  const prefix = deps.queues.prefix;
  const source = queueSource(deps.queues, deps.pools);
  const dashboard: DashboardHandler | null = deps.credentials
    ? createDashboard({ queues: deps.queues, pools: deps.pools, credentials: deps.credentials })
    : null;

  return async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const read = req.method === "GET" || req.method === "HEAD";
    if (read && path === "/healthz") {
      json(res, 200, { status: "ok" });
      return true;
    }
    if (read && path === "/readyz") {
      const reason = await readiness(redis, deps.readyTimeoutMs);
      if (reason) json(res, 503, { status: "unavailable", reason: redact(reason) });
      else json(res, 200, { status: "ready" });
      return true;
    }
    if (read && path === "/metrics") {
      const snap = await scrape(redis, prefix, source);
      if (!snap.redisUp) deps.log.warn({ err: snap.redisError }, "metrics scrape: Redis did not answer");
      deps.metrics.apply(snap);
      res
        .writeHead(200, { "content-type": deps.metrics.contentType, "cache-control": "no-store" })
        .end(await deps.metrics.render());
      return true;
    }
    if (dashboard && isDashboardPath(req.url)) {
      dashboard(req, res);
      return true;
    }
    return false;
  };
}
