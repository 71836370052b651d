import { randomUUID } from "node:crypto";
import {
  type JobsOptions,
  type Processor,
  Queue,
  type QueueOptions,
  Worker,
  type WorkerOptions,
} from "bullmq";
import type { Redis } from "ioredis";
import { POOL_NAMES } from "../config/pools.js";
import { type FixJob, fixJobSchema } from "../contracts/fix-job.js";
import { createRedis, type RedisTarget } from "./redis.js";

/**
 * The only place that constructs BullMQ queues and workers. One queue per hardware pool,
 * named by the pool (`<prefix>:<pool>` in Redis: autofix:n150, autofix:t3k, ...).
 */

export const JOB_NAME = "fix";

/** Retention: enough history for status and the dashboard, bounded so Redis does not grow forever. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  // Attempts cover crashes and stalls (a thrown error or a lost lock), not a fix the agent
  // could not find: that ends the job normally with a "failed" outcome.
  attempts: 3,
  backoff: { type: "exponential", delay: 30_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 5000 },
};

export interface EnqueueResult {
  jobId: string;
  /** True when a job with the same fingerprint was already queued or running; jobId is that job's. */
  deduplicated: boolean;
}

export interface ActiveJobRef {
  pool: string;
  jobId: string;
}

function isTarget(redis: Redis | RedisTarget): redis is RedisTarget {
  return typeof redis === "string" || ("url" in redis && "topology" in redis);
}

export class JobQueues {
  readonly prefix: string;
  readonly connection: Redis;
  #queues = new Map<string, Queue<FixJob>>();
  #ownsConnection: boolean;

  /**
   * `connection` may be shared; when a target (an endpoint from the settings, or a URL) is
   * given the queues own their connection.
   */
  constructor(opts: { redis: Redis | RedisTarget; prefix: string }) {
    this.prefix = opts.prefix;
    if (isTarget(opts.redis)) {
      this.connection = createRedis(opts.redis, "producer");
      this.#ownsConnection = true;
    } else {
      this.connection = opts.redis;
      this.#ownsConnection = false;
    }
  }

  queue(pool: string): Queue<FixJob> {
    if (!POOL_NAMES.includes(pool))
      throw new Error(`unknown pool "${pool}" (known: ${POOL_NAMES.join(", ")})`);
    let q = this.#queues.get(pool);
    if (!q) {
      const opts: QueueOptions = {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: DEFAULT_JOB_OPTIONS,
      };
      q = new Queue<FixJob>(pool, opts);
      q.on("error", () => {});
      this.#queues.set(pool, q);
    }
    return q;
  }

  /**
   * Validate and enqueue a job on its pool's queue. A job whose fingerprint is already queued
   * or running is not added again; the existing job's id comes back instead.
   */
  async enqueue(job: FixJob, opts: { priority?: number } = {}): Promise<EnqueueResult> {
    const data = fixJobSchema.parse(job);
    const jobId = randomUUID();
    const added = await this.queue(data.pool).add(JOB_NAME, data, {
      jobId,
      deduplication: { id: data.fingerprint },
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
    });
    const id = added.id ?? jobId;
    return { jobId: id, deduplicated: id !== jobId };
  }

  /** Find the queued or running job for a fingerprint on any pool (pools are asked at once). */
  async findActive(fingerprint: string, pools: readonly string[] = POOL_NAMES): Promise<ActiveJobRef | null> {
    const found = await Promise.all(
      pools.map(async (pool) => {
        const q = this.queue(pool);
        const jobId = await q.getDeduplicationJobId(fingerprint);
        if (!jobId) return null;
        const state = await q.getJobState(jobId);
        return state !== "completed" && state !== "failed" && state !== "unknown" ? { pool, jobId } : null;
      }),
    );
    return found.find((f) => f !== null) ?? null;
  }

  /**
   * 1-based position among waiting jobs (0 when it is not waiting). New jobs are pushed on the
   * left of the wait list and workers take from the right, so the position counts from the right.
   * One LPOS instead of reading the jobs: cheap however long the queue is.
   */
  async position(pool: string, jobId: string): Promise<number> {
    const key = this.queue(pool).keys.wait!;
    const [idx, len] = await Promise.all([this.connection.lpos(key, jobId), this.connection.llen(key)]);
    return idx === null ? 0 : len - idx;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    this.#queues.clear();
    if (this.#ownsConnection) this.connection.disconnect();
  }
}

/** Construct a worker for one pool with the settings BullMQ needs for long jobs. */
export function createPoolWorker(
  pool: string,
  processor: Processor<FixJob>,
  opts: {
    /** The endpoint from the settings (a bare URL means one standalone server). */
    redisUrl: RedisTarget;
    prefix: string;
    concurrency?: number;
    lockDuration?: number;
  } & Partial<WorkerOptions>,
): Worker<FixJob> {
  if (!POOL_NAMES.includes(pool)) throw new Error(`unknown pool "${pool}"`);
  const { redisUrl, prefix, concurrency, lockDuration, ...rest } = opts;
  // BullMQ treats a connection it is handed as shared and never closes it: the worker made
  // this one, so it closes it with the worker (an open socket keeps the process alive).
  const connection = createRedis(redisUrl, "worker");
  const worker = new Worker<FixJob>(pool, processor, {
    connection,
    prefix,
    concurrency: concurrency ?? 1,
    // Jobs run for many minutes; the lock is renewed every lockDuration/2 while the event loop is free.
    lockDuration: lockDuration ?? 60_000,
    maxStalledCount: 2,
    autorun: false,
    ...rest,
  });
  worker.on("closed", () => connection.disconnect());
  return worker;
}
