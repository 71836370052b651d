import type { Redis } from "ioredis";
import { JobQueues } from "./queues.js";

/**
 * Cross-process job control for `/autofix cancel` and `/autofix retry`.
 *
 * Cancel: a waiting job is removed from its queue (the caller then sets its status comment
 * to cancelled). A running job gets a flag in Redis (a key with a TTL, so a worker that
 * starts or checks later still sees it) and a pub/sub message on the control channel; the
 * worker holding the job aborts it and ends its status in "cancelled".
 *
 * Retry lives in the web process: it re-enqueues the last request saved for the target
 * (src/triggers/store.ts); the fingerprint dedup keeps it to one live job per target.
 */

export type CancelResult = "removed-waiting" | "signalled-running" | "not-found";

/** How long a cancel flag lives: long enough for any job to notice it. */
export const CANCEL_FLAG_TTL_SECONDS = 24 * 3600;

export function cancelKey(prefix: string, pool: string, jobId: string): string {
  return `${prefix}:_control:cancel:${pool}:${jobId}`;
}

export function cancelChannel(prefix: string): string {
  return `${prefix}:_control:cancel`;
}

export interface CancelMessage {
  pool: string;
  jobId: string;
}

/** Parse a message from the control channel; null for anything else. Pure. */
export function parseCancelMessage(text: string): CancelMessage | null {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object") {
      const { pool, jobId } = v as Record<string, unknown>;
      if (typeof pool === "string" && typeof jobId === "string" && pool && jobId) return { pool, jobId };
    }
  } catch {
    // not ours
  }
  return null;
}

const WAITING_STATES = new Set(["waiting", "prioritized", "delayed", "paused", "waiting-children"]);

/** Ask for a job to stop. See the module comment for what each result means for the caller. */
export async function requestCancel(
  redis: Redis,
  prefix: string,
  pool: string,
  jobId: string,
): Promise<CancelResult> {
  const queues = new JobQueues({ redis, prefix });
  try {
    const job = await queues.queue(pool).getJob(jobId);
    if (!job) return "not-found";
    const state = await job.getState();
    if (WAITING_STATES.has(state)) {
      try {
        await job.remove();
        return "removed-waiting";
      } catch {
        // Taken by a worker between the two calls (the job is locked): signal it instead.
      }
    } else if (state !== "active") {
      return "not-found";
    }
    await redis.set(cancelKey(prefix, pool, jobId), String(Date.now()), "EX", CANCEL_FLAG_TTL_SECONDS);
    await redis.publish(cancelChannel(prefix), JSON.stringify({ pool, jobId } satisfies CancelMessage));
    return "signalled-running";
  } finally {
    await queues.close();
  }
}

/**
 * Worker side: listens on the control channel and tells the holder of a job to abort it.
 * `subscriber` must be a connection of its own (it enters subscriber mode); `client` is used
 * for flag reads. Flags are also polled, in case a message was published before subscribing
 * or lost in a reconnect.
 */
export class CancelWatcher {
  #watches = new Map<string, Set<() => void>>();
  #timers = new Set<NodeJS.Timeout>();
  #started = false;

  constructor(
    readonly subscriber: Redis,
    readonly client: Redis,
    readonly prefix: string,
    readonly pollMs = 5_000,
  ) {}

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.subscriber.on("message", (channel: string, text: string) => {
      if (channel !== cancelChannel(this.prefix)) return;
      const msg = parseCancelMessage(text);
      if (msg) this.#fire(msg.pool, msg.jobId);
    });
    await this.subscriber.subscribe(cancelChannel(this.prefix));
  }

  #fire(pool: string, jobId: string): void {
    for (const cb of this.#watches.get(`${pool}/${jobId}`) ?? []) cb();
  }

  async isCancelRequested(pool: string, jobId: string): Promise<boolean> {
    return (await this.client.exists(cancelKey(this.prefix, pool, jobId))) === 1;
  }

  async clear(pool: string, jobId: string): Promise<void> {
    await this.client.del(cancelKey(this.prefix, pool, jobId));
  }

  /** Call `onCancel` (once) when a cancel for the job arrives. Returns the unwatch function. */
  watch(pool: string, jobId: string, onCancel: () => void): () => void {
    const key = `${pool}/${jobId}`;
    let done = false;
    const cb = () => {
      if (done) return;
      done = true;
      onCancel();
    };
    let set = this.#watches.get(key);
    if (!set) {
      set = new Set();
      this.#watches.set(key, set);
    }
    set.add(cb);
    const check = () => {
      this.isCancelRequested(pool, jobId).then(
        (yes) => yes && cb(),
        () => {},
      );
    };
    check();
    const timer = setInterval(check, this.pollMs);
    timer.unref();
    this.#timers.add(timer);
    return () => {
      done = true;
      clearInterval(timer);
      this.#timers.delete(timer);
      set.delete(cb);
      if (set.size === 0) this.#watches.delete(key);
    };
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    this.#watches.clear();
    if (this.#started) await this.subscriber.unsubscribe().catch(() => {});
  }
}
