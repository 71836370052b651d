import type { Redis } from "ioredis";
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import { Outbox, type OutboxDepth } from "../status/outbox/outbox.js";
import { listWorkers, type WorkerHeartbeat } from "./heartbeat.js";
import { type JobMetricsSnapshot, readJobMetrics } from "./job-metrics.js";

/** BullMQ job states counted per pool at scrape time. */
export const QUEUE_STATES = [
  "waiting",
  "prioritized",
  "delayed",
  "active",
  "waiting-children",
  "completed",
  "failed",
] as const;

/** States that count as "not running yet" in the queue depth (BullMQ 6 keeps a paused queue's jobs in wait). */
const DEPTH_STATES = new Set(["waiting", "prioritized", "delayed"]);

/** What one scrape reads from Redis (the imperative part, separated so the mapping is pure). */
export interface ScrapeSnapshot {
  redisUp: boolean;
  /** Why Redis could not be read (redacted by the caller before it leaves). */
  redisError?: string;
  queues: Array<{ pool: string; counts: Record<string, number>; oldestWaitingSeconds: number }>;
  jobs: JobMetricsSnapshot;
  workers: WorkerHeartbeat[];
  /** The outbox of GitHub writes: lanes waiting per kind, and the oldest one's age. */
  outbox?: OutboxDepth;
}

/** The queue side of a scrape: one function per pool, so tests and main build it from JobQueues. */
export interface QueueSource {
  pools: readonly string[];
  counts(pool: string): Promise<Record<string, number>>;
  /** Creation time (ms) of the oldest job waiting to run, or null when none waits. */
  oldestWaiting(pool: string): Promise<number | null>;
}

/**
 * Told about every webhook decision (the web process subscribes it to the triggers; any
 * listener of theirs that takes at least the event and the decision word fits).
 */
export type WebhookDecisionListener = (event: string, record: { decision: string }) => void;

export const EMPTY_JOBS: JobMetricsSnapshot = { outcomes: [], phases: [], gates: [], spend: [] };

/** Read everything a scrape shows. Never throws: when Redis is away, redisUp is false. */
export async function scrape(
  redis: Redis,
  prefix: string,
  source: QueueSource,
  now: Date = new Date(),
): Promise<ScrapeSnapshot> {
  try {
    const [queues, jobs, workers, outbox] = await Promise.all([
      Promise.all(
        source.pools.map(async (pool) => {
          const [counts, oldest] = await Promise.all([source.counts(pool), source.oldestWaiting(pool)]);
          return {
            pool,
            counts,
            oldestWaitingSeconds: oldest === null ? 0 : Math.max(0, (now.getTime() - oldest) / 1000),
          };
        }),
      ),
      readJobMetrics(redis, prefix),
      listWorkers(redis, prefix, now),
      new Outbox({ redis, prefix, now: () => now.getTime() }).depth(),
    ]);
    return { redisUp: true, queues, jobs, workers, outbox };
  } catch (err) {
    return { redisUp: false, redisError: (err as Error).message, queues: [], jobs: EMPTY_JOBS, workers: [] };
  }
}

/**
 * A Prometheus histogram whose buckets are already counted elsewhere (in Redis, by workers);
 * prom-client's Histogram can only observe, so this one reports the values it is given.
 */
class PrecountedHistogram {
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  #values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(phases: JobMetricsSnapshot["phases"]): void {
    this.#values = [];
    for (const p of phases) {
      const labels = { pool: p.pool, phase: p.phase };
      for (const b of p.buckets)
        this.#values.push({
          value: b.count,
          labels: { ...labels, le: b.le },
          metricName: `${this.name}_bucket`,
        });
      this.#values.push({
        value: p.count,
        labels: { ...labels, le: "+Inf" },
        metricName: `${this.name}_bucket`,
      });
      this.#values.push({ value: p.sumSeconds, labels, metricName: `${this.name}_sum` });
      this.#values.push({ value: p.count, labels, metricName: `${this.name}_count` });
    }
  }
  get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.#values,
    };
  }
  reset(): void {
    this.#values = [];
  }
}

/**
 * The web process's Prometheus metrics. Webhook decisions are counted in this process; the rest
 * is read from Redis when /metrics is scraped, because queues and workers live elsewhere.
 */
export class OpsMetrics {
  readonly registry = new Registry();
  readonly webhookDeliveries = new Counter({
    name: "autofix_webhook_deliveries_total",
    help: "Webhook deliveries handled by this web process, by event and decision",
    labelNames: ["event", "decision"] as const,
    registers: [this.registry],
  });
  #redisUp = this.gauge("autofix_redis_up", "1 when Redis answered during this scrape", []);
  #jobs = this.gauge("autofix_queue_jobs", "Jobs per pool queue and BullMQ state", ["pool", "state"]);
  #depth = this.gauge(
    "autofix_queue_depth",
    "Jobs not running yet per pool (waiting, prioritized, delayed for a retry)",
    ["pool"],
  );
  #oldest = this.gauge(
    "autofix_queue_oldest_waiting_seconds",
    "Age of the oldest job waiting to run per pool (0 when none waits)",
    ["pool"],
  );
  #outcomes = this.counter("autofix_job_outcomes_total", "Finished jobs by pool and final state", [
    "pool",
    "state",
  ]);
  #phases = new PrecountedHistogram(
    "autofix_phase_duration_seconds",
    "Agent phase wall time by pool and phase",
  );
  #gateChecks = this.counter("autofix_gate_checks_total", "Gate checks run by the harness", ["pool"]);
  #gatePasses = this.counter("autofix_gate_passes_total", "Gate checks that passed", ["pool"]);
  #gateRate = this.gauge("autofix_gate_pass_ratio", "Passed / run gate checks since the counters began", [
    "pool",
  ]);
  #tokens = this.counter("autofix_tokens_total", "Model tokens used by finished jobs", ["pool"]);
  #cost = this.counter("autofix_cost_usd_total", "Estimated model spend of finished jobs, in USD", ["pool"]);
  #workers = this.gauge("autofix_workers", "Live workers (fresh heartbeat) serving each pool", ["pool"]);
  #workerUp = this.gauge("autofix_worker_up", "1 per live worker and pool it serves", [
    "host",
    "worker",
    "pool",
  ]);
  #workerAge = this.gauge(
    "autofix_worker_heartbeat_age_seconds",
    "Seconds since the worker's last heartbeat",
    ["host", "worker"],
  );
  #workerCards = this.gauge("autofix_worker_cards", "TT cards the worker hands out", ["host", "worker"]);
  #workerBusy = this.gauge("autofix_worker_busy", "1 when the worker is running a job", ["host", "worker"]);
  #outboxPending = this.gauge(
    "autofix_outbox_pending",
    "GitHub writes waiting in the outbox, by kind (a status comment counts once however many views it got)",
    ["kind"],
  );
  #outboxOldest = this.gauge(
    "autofix_outbox_oldest_seconds",
    "Age of the oldest GitHub write waiting in the outbox (0 when it is empty)",
    [],
  );

  constructor(opts: { processMetrics?: boolean } = {}) {
    this.registry.registerMetric(this.#phases as unknown as Metric);
    if (opts.processMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "autofix_web_" });
  }

  /** Subscribe to the triggers' decisions (src/web/registrations.ts): counts every webhook decision. */
  readonly onDecision: WebhookDecisionListener = (event, record) => {
    this.webhookDeliveries.inc({ event, decision: record.decision });
  };

  /** Replace the Redis-backed values with a scrape's (pure with respect to Redis). */
  apply(snap: ScrapeSnapshot, now: Date = new Date()): void {
    this.#redisUp.set(snap.redisUp ? 1 : 0);
    if (!snap.redisUp) return; // keep the last values rather than report zeros for an outage
    for (const m of [
      this.#jobs,
      this.#depth,
      this.#oldest,
      this.#outcomes,
      this.#gateChecks,
      this.#gatePasses,
    ]) {
      m.reset();
    }
    for (const m of [
      this.#gateRate,
      this.#tokens,
      this.#cost,
      this.#workers,
      this.#workerUp,
      this.#workerAge,
    ]) {
      m.reset();
    }
    this.#workerCards.reset();
    this.#workerBusy.reset();
    if (snap.outbox) {
      for (const [kind, n] of Object.entries(snap.outbox.pending)) this.#outboxPending.set({ kind }, n);
      this.#outboxOldest.set(snap.outbox.oldestSeconds);
    }
    for (const q of snap.queues) {
      let depth = 0;
      for (const state of QUEUE_STATES) {
        const n = q.counts[state] ?? 0;
        this.#jobs.set({ pool: q.pool, state }, n);
        if (DEPTH_STATES.has(state)) depth += n;
      }
      this.#depth.set({ pool: q.pool }, depth);
      this.#oldest.set({ pool: q.pool }, q.oldestWaitingSeconds);
      this.#workers.set({ pool: q.pool }, 0);
    }
    for (const o of snap.jobs.outcomes) this.#outcomes.inc({ pool: o.pool, state: o.state }, o.count);
    this.#phases.set(snap.jobs.phases);
    for (const g of snap.jobs.gates) {
      this.#gateChecks.inc({ pool: g.pool }, g.total);
      this.#gatePasses.inc({ pool: g.pool }, g.passed);
      if (g.total > 0) this.#gateRate.set({ pool: g.pool }, g.passed / g.total);
    }
    for (const s of snap.jobs.spend) {
      this.#tokens.inc({ pool: s.pool }, s.tokens);
      this.#cost.inc({ pool: s.pool }, s.costUsd);
    }
    const perPool = new Map<string, number>();
    for (const w of snap.workers) {
      const who = { host: w.host, worker: w.id };
      for (const pool of w.pools) {
        this.#workerUp.set({ ...who, pool }, 1);
        perPool.set(pool, (perPool.get(pool) ?? 0) + 1);
      }
      this.#workerAge.set(who, Math.max(0, (now.getTime() - Date.parse(w.seenAt)) / 1000));
      this.#workerCards.set(who, w.cards.length);
      this.#workerBusy.set(who, w.currentJob ? 1 : 0);
    }
    for (const [pool, n] of perPool) this.#workers.set({ pool }, n);
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
