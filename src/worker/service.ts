import { hostname } from "node:os";
import type { Worker } from "bullmq";
import { parseFixJob } from "../contracts/fix-job.js";
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_SECONDS, startHeartbeat } from "../ops/heartbeat.js";
import { recordJobOutcome } from "../ops/job-metrics.js";
import { CancelWatcher, cancelChannel } from "../queue/cancel.js";
import { createPoolWorker, JobQueues } from "../queue/queues.js";
import { createRedis, type RedisTarget } from "../queue/redis.js";
import type { ExecutorFactory } from "../sandbox/executor.js";
import { hostExecutorFactory } from "../sandbox/host.js";
import type { Logger } from "../shared/logger.js";
import { redact } from "../shared/redact.js";
import { initialView } from "../status/job-view.js";
import { drainerOctokits, Outbox, OutboxDrainer, outboxStatusSinks } from "../status/outbox/index.js";
import { type StatusSinkFactory, statusTargetOf } from "../status/sink.js";
import type { PoolPlan } from "./hardware.js";
import { CardAllocator, checkHealth, chooseResetCommand, killDeviceHolders, resetCards } from "./hygiene.js";
import { stalledMessage } from "./job-end.js";
import { type ActiveJobHandle, createJobProcessor, type HostHooks } from "./lifecycle.js";
import { type Clock, type GitHubFactory, type JobRunner, systemClock } from "./types.js";
import type { WorkspaceManagerLike } from "./workspace.js";

/** How long a stopping worker keeps delivering the outbox (its jobs' last status views). */
export const OUTBOX_FLUSH_MS = 5_000;

/** Default time a running job gets to finish after SIGTERM before it is aborted and requeued. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 60_000;

export interface HostOptions {
  deviceDir: string;
  /** Device node names found at start (the cards this worker hands out). */
  devices: string[];
  ttSmi: string | null;
  /** Host reset command (AUTOFIX_RESET_COMMAND); wins over the repository's commands.reset. */
  resetCommand?: string;
  /** /proc, or a fake folder in tests. */
  procRoot?: string;
  env?: NodeJS.ProcessEnv;
  /** How often a paused (unhealthy) worker checks again. */
  recheckMs?: number;
}

export interface StartWorkerOptions {
  redisUrl: RedisTarget;
  prefix: string;
  plans: PoolPlan[];
  runJob: JobRunner;
  /** The job's command executor (default: the host backend). */
  executors?: ExecutorFactory;
  github: GitHubFactory;
  /**
   * Where job status views go (default: the durable outbox in Redis, whose drainer writes each
   * target's one status comment through `github`).
   */
  statusSinks?: StatusSinkFactory;
  /** Run an outbox drainer in this process (default true): it delivers every process's GitHub writes. */
  drainOutbox?: boolean;
  workspaces: WorkspaceManagerLike;
  logger: Logger;
  host: HostOptions;
  clock?: Clock;
  name?: string;
  shutdownDeadlineMs?: number;
  throttleMs?: number;
  jobTimeoutMs?: number;
  /** BullMQ lock and stall settings (tests shorten them). */
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
  cancelPollMs?: number;
}

export interface RunningWorker {
  name: string;
  workers: Map<string, Worker>;
  /** Stop taking jobs, give running jobs until the deadline, then abort and requeue them. */
  shutdown(opts?: { deadlineMs?: number }): Promise<void>;
  /** A second stop signal: abort every running job now (each is requeued, as at the deadline). */
  abortRunning(): number;
}

/** Host hooks from the host options: card allocation, health check, hygiene. Exported for tests. */
export function createHostHooks(
  host: HostOptions,
  logger: Logger,
  pause: (plan: PoolPlan, reason: string) => void,
): HostHooks {
  const cards = new CardAllocator(host.devices);
  return {
    acquireCards: (n, signal) => cards.acquire(n, signal),
    releaseCards: (c) => cards.release(c),
    healthCheck: (plan) =>
      checkHealth({
        deviceDir: host.deviceDir,
        cardsNeeded: plan.forced ? 0 : plan.cards,
        ttSmi: plan.cards > 0 ? host.ttSmi : null,
        ...(host.env ? { env: host.env } : {}),
      }),
    onUnhealthy: pause,
    async afterJob(plan, info) {
      if (plan.cards === 0) return;
      // Only this job's cards: other jobs may be running on the host's other cards.
      const mine = info.cards.length > 0 ? { cards: info.cards } : {};
      const killed = await killDeviceHolders(host.deviceDir, {
        ...(host.procRoot ? { procRoot: host.procRoot } : {}),
        ...mine,
        graceMs: 1_000,
      });
      if (killed.length > 0)
        logger.warn({ pids: killed, pool: plan.pool }, "killed processes left holding the cards");
      const { command, where } = chooseResetCommand(host.resetCommand, info.repoResetCommand);
      if (!command) return;
      // The command learns the job's cards (`tt-smi -r $AUTOFIX_CARDS` resets just those).
      const list = info.cards.join(",");
      const jobEnv = { AUTOFIX_CARDS: list, TT_VISIBLE_DEVICES: list };
      // The operator's command runs on the host; the repository's is the repository's code and
      // runs where the job's commands ran, in the job's sandbox with only its cards.
      const executor = info.executor;
      if (where === "job" && !executor) {
        logger.warn(
          { pool: plan.pool },
          "the repository's reset command was not run: the job has no executor",
        );
        return;
      }
      const r = await resetCards(command, {
        ...(host.env ? { env: host.env } : {}),
        jobEnv,
        ...(where === "job" && executor
          ? { runner: (cmd, o) => executor.run(cmd, { env: o.env, timeoutMs: o.timeoutMs }) }
          : {}),
      });
      if (r.ok) logger.info({ command, where, attempts: r.attempts, pool: plan.pool }, "cards reset");
      else
        logger.error({ pool: plan.pool, error: r.error }, "card reset failed; the next health check decides");
    },
  };
}

/**
 * Start serving pools: one BullMQ worker per pool (concurrency from the plan), a cancel
 * listener, stale workspace cleanup, and stalled-job reporting.
 */
export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  const log = opts.logger;
  const clock = opts.clock ?? systemClock;
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const removed = await opts.workspaces.cleanupStale();
  if (removed.length > 0) log.info({ removed }, "removed workspaces left by a previous run");

  const client = createRedis(opts.redisUrl, "worker");
  const subscriber = createRedis(opts.redisUrl, "worker");
  const cancel = new CancelWatcher(subscriber, client, opts.prefix, opts.cancelPollMs);
  await cancel.start();
  const queues = new JobQueues({ redis: client, prefix: opts.prefix });

  const drain = new AbortController();
  const active = new Map<string, ActiveJobHandle>();
  const workers = new Map<string, Worker>();
  const recheck = new Map<string, NodeJS.Timeout>();

  const pause = (plan: PoolPlan, reason: string) => {
    const w = workers.get(plan.pool);
    if (!w || recheck.has(plan.pool) || drain.signal.aborted) return;
    log.error({ pool: plan.pool, reason }, "hardware check failed; not taking jobs until it passes");
    w.pause(true).catch(() => {});
    const timer = setInterval(async () => {
      const why = await hooks.healthCheck(plan);
      if (why === null && !drain.signal.aborted) {
        clearInterval(timer);
        recheck.delete(plan.pool);
        log.info({ pool: plan.pool }, "hardware check passes again; taking jobs");
        w.resume();
      }
    }, opts.host.recheckMs ?? 30_000);
    timer.unref();
    recheck.set(plan.pool, timer);
  };
  const hooks = createHostHooks(opts.host, log, pause);
  // Status views go to the outbox (durable once write() resolves: the worker's connection
  // waits for Redis rather than fail) and a drainer, here and in the web process, writes them.
  const outbox = new Outbox({ redis: client, prefix: opts.prefix });
  const statusSinks = opts.statusSinks ?? outboxStatusSinks(outbox);
  const drainer =
    opts.drainOutbox === false
      ? null
      : new OutboxDrainer({
          outbox,
          octokitFor: drainerOctokits(opts.github),
          log: log.child({ name: "outbox" }),
        });
  drainer?.start();

  for (const plan of opts.plans) {
    const processor = createJobProcessor(plan, {
      runJob: opts.runJob,
      status: statusSinks,
      executors: opts.executors ?? hostExecutorFactory(),
      github: opts.github,
      workspaces: opts.workspaces,
      clock,
      logger: log,
      cancel,
      host: hooks,
      drain: drain.signal,
      active,
      workerName: name,
      ...(opts.throttleMs !== undefined ? { throttleMs: opts.throttleMs } : {}),
      ...(opts.jobTimeoutMs !== undefined ? { jobTimeoutMs: opts.jobTimeoutMs } : {}),
      recordFinished: async (finished) => {
        const r = await recordJobOutcome(client, opts.prefix, finished);
        if (!r.ok) log.warn({ error: r.error, pool: plan.pool }, "job metrics not recorded");
      },
    });
    const worker = createPoolWorker(plan.pool, processor, {
      redisUrl: opts.redisUrl,
      prefix: opts.prefix,
      concurrency: plan.concurrency,
      ...(opts.lockDuration !== undefined ? { lockDuration: opts.lockDuration } : {}),
      ...(opts.stalledInterval !== undefined ? { stalledInterval: opts.stalledInterval } : {}),
      ...(opts.maxStalledCount !== undefined ? { maxStalledCount: opts.maxStalledCount } : {}),
      name,
    });
    worker.on("error", (err) => log.error({ err, pool: plan.pool }, "worker error"));
    worker.on("failed", (job, err) =>
      log.warn({ pool: plan.pool, jobId: job?.id, err: redact(err.message) }, "job attempt failed"),
    );
    // A job whose worker died too often ends failed without a processor: say so in its comment.
    worker.on("stalled", (jobId) => {
      reportStalled(plan.pool, jobId).catch((err) =>
        log.warn({ err, jobId }, "could not report a stalled job"),
      );
    });
    workers.set(plan.pool, worker);
  }
  for (const [pool, w] of workers) {
    w.run().catch((err) => log.error({ err, pool }, "worker stopped"));
  }
  log.info(
    { name, pools: opts.plans.map((p) => `${p.pool}x${p.concurrency}`), channel: cancelChannel(opts.prefix) },
    "worker started",
  );
  // Live-worker record for `autofix status` and /metrics (src/ops/heartbeat.ts); never fatal.
  const heartbeat = await startHeartbeat(client, opts.prefix, {
    host: hostname(),
    id: name,
    pools: opts.plans.map((p) => p.pool),
    cards: opts.host.devices,
    currentJob: () => [...active.keys()].join(", ") || null,
    intervalMs: HEARTBEAT_INTERVAL_MS,
    ttlSeconds: HEARTBEAT_TTL_SECONDS,
    onError: (err) => log.warn({ err }, "worker heartbeat not written; retrying"),
  }).catch((err: Error) => {
    log.warn({ err }, "worker heartbeat could not start; `autofix status` will not list this worker");
    return null;
  });

  async function reportStalled(pool: string, jobId: string): Promise<void> {
    const job = await queues.queue(pool).getJob(jobId);
    if (!job) return;
    const parsed = parseFixJob(job.data);
    if (!parsed.ok) return;
    // Only a job that failed for stalling is reported here: no worker will run it again. A job
    // moved back to wait is taken by the next worker, whose first edit says it was resumed.
    if ((await job.getState()) !== "failed") return;
    await statusSinks(statusTargetOf(parsed.job)).write({
      ...initialView(parsed.job, jobId, new Date(clock.now())),
      state: "failed",
      message: stalledMessage(job.failedReason),
    });
  }

  let shuttingDown: Promise<void> | null = null;
  return {
    name,
    workers,
    abortRunning() {
      const n = active.size;
      if (n > 0) log.warn({ running: n }, "second stop signal: aborting running jobs now");
      for (const handle of active.values()) handle.abort("shutdown");
      return n;
    },
    shutdown(sopts = {}) {
      shuttingDown ??= (async () => {
        const deadline = sopts.deadlineMs ?? opts.shutdownDeadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
        log.info({ deadlineMs: deadline, running: active.size }, "shutting down: no new jobs");
        drain.abort();
        for (const t of recheck.values()) clearInterval(t);
        // Stop fetching now; running jobs get until the deadline.
        await Promise.all([...workers.values()].map((w) => w.pause(true).catch(() => {})));
        const timer = setTimeout(() => {
          for (const handle of active.values()) handle.abort("shutdown");
        }, deadline);
        try {
          await Promise.all([...workers.values()].map((w) => w.close()));
        } finally {
          clearTimeout(timer);
          await heartbeat?.stop().catch(() => {});
          // The jobs' last views go out first (bounded); anything left is delivered by the web
          // process's drainer or the next worker's.
          if (drainer && !(await drainer.flush(OUTBOX_FLUSH_MS).catch(() => false)))
            log.warn("shutting down with GitHub writes still in the outbox; another process delivers them");
          await drainer?.stop().catch(() => {});
          await cancel.close();
          await queues.close();
          subscriber.disconnect();
          client.disconnect();
        }
        log.info("worker stopped");
      })();
      return shuttingDown;
    },
  };
}
