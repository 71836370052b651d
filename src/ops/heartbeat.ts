import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { z } from "zod";

/**
 * Worker heartbeats. Each worker process writes one key, `<prefix>:worker:<id>`, with a TTL a
 * few intervals long and refreshes it every interval; a worker that stops or dies stops
 * refreshing and its key expires, so whoever lists workers sees only live ones. A sorted set
 * (`<prefix>:workers`, score = expiry time) indexes the keys, so listing needs no SCAN (which
 * would see one node only on a Cluster); with a hash-tagged prefix all of it lives in one slot.
 */

/** Defaults for workers: refresh every 10 s, gone 45 s after the last refresh. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
export const HEARTBEAT_TTL_SECONDS = 45;

export const heartbeatSchema = z.object({
  id: z.string().min(1),
  host: z.string().min(1),
  pid: z.number().int(),
  pools: z.array(z.string()),
  /** Device nodes this worker hands out (/dev/tenstorrent/0 -> "0"); empty on a cpu-only host. */
  cards: z.array(z.string()),
  /** The job(s) running right now ("n150/123"), or null when idle. */
  currentJob: z.string().nullable(),
  startedAt: z.string(),
  seenAt: z.string(),
});
export type WorkerHeartbeat = z.infer<typeof heartbeatSchema>;

export interface HeartbeatOptions {
  host: string;
  pools: readonly string[];
  cards: readonly string[];
  currentJob?: () => string | null;
  /** How often the key is refreshed. */
  intervalMs: number;
  /** How long the key outlives the last refresh; keep it at 3 or more intervals. */
  ttlSeconds: number;
  /** Unique per process; host:pid by default. */
  id?: string;
  /** Told about a failed refresh (Redis away); the next interval tries again. */
  onError?: (err: Error) => void;
  now?: () => Date;
}

export interface Heartbeat {
  readonly id: string;
  /** Write now (also done on start and every interval). */
  beat(): Promise<void>;
  /** Stop refreshing and remove the key, so the worker disappears at once. */
  stop(): Promise<void>;
}

export function workersIndexKey(prefix: string): string {
  return `${prefix}:workers`;
}

export function workerKey(prefix: string, id: string): string {
  return `${prefix}:worker:${id}`;
}

/** Start the heartbeat: the first write happens before this resolves. */
export async function startHeartbeat(
  redis: Redis,
  prefix: string,
  opts: HeartbeatOptions,
): Promise<Heartbeat> {
  if (!(opts.intervalMs > 0)) throw new Error("heartbeat intervalMs must be positive");
  if (!(opts.ttlSeconds * 1000 > opts.intervalMs))
    throw new Error("heartbeat ttlSeconds must be longer than intervalMs, or live workers blink out");
  const now = opts.now ?? (() => new Date());
  const id = opts.id ?? `${opts.host || hostname()}:${process.pid}`;
  const startedAt = now().toISOString();
  const key = workerKey(prefix, id);
  const index = workersIndexKey(prefix);
  let stopped = false;

  const beat = async () => {
    if (stopped) return;
    const at = now();
    const record: WorkerHeartbeat = {
      id,
      host: opts.host,
      pid: process.pid,
      pools: [...opts.pools],
      cards: [...opts.cards],
      currentJob: opts.currentJob?.() ?? null,
      startedAt,
      seenAt: at.toISOString(),
    };
    await redis
      .multi()
      .set(key, JSON.stringify(record), "EX", opts.ttlSeconds)
      .zadd(index, at.getTime() + opts.ttlSeconds * 1000, id)
      .exec();
  };

  await beat();
  // A worker's connection queues commands while Redis is away: never pile up refreshes.
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    beat()
      .catch((err: Error) => opts.onError?.(err))
      .finally(() => {
        inFlight = false;
      });
  }, opts.intervalMs);
  timer.unref();

  return {
    id,
    beat,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await redis.multi().del(key).zrem(index, id).exec();
    },
  };
}

/** Live workers (keys not yet expired), sorted by host then id. Prunes expired index entries. */
export async function listWorkers(
  redis: Redis,
  prefix: string,
  now: Date = new Date(),
): Promise<WorkerHeartbeat[]> {
  const index = workersIndexKey(prefix);
  await redis.zremrangebyscore(index, "-inf", String(now.getTime()));
  const ids = await redis.zrange(index, "0", "-1");
  if (ids.length === 0) return [];
  const values = await redis.mget(...ids.map((id) => workerKey(prefix, id)));
  const out: WorkerHeartbeat[] = [];
  for (const raw of values) {
    if (!raw) continue;
    try {
      const parsed = heartbeatSchema.safeParse(JSON.parse(raw));
      if (parsed.success) out.push(parsed.data);
    } catch {
      // A value that is not JSON is not a heartbeat; skip it.
    }
  }
  return out.sort((a, b) => a.host.localeCompare(b.host) || a.id.localeCompare(b.id));
}
