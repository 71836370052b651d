import { Redis, type RedisOptions } from "ioredis";

/**
 * Who uses the connection decides how it fails:
 * - producer (web process): fail fast, so a Redis outage becomes a quick 5xx to GitHub
 *   instead of a webhook that hangs until Probot answers 202;
 * - worker: block and retry forever (BullMQ requires maxRetriesPerRequest: null).
 */
export type ConnectionRole = "producer" | "worker";

export function redisOptions(role: ConnectionRole): RedisOptions {
  if (role === "worker") {
    return { maxRetriesPerRequest: null, enableReadyCheck: true };
  }
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 3_000,
    // Keep trying to reconnect in the background, at most every 2 s.
    retryStrategy: (times) => Math.min(200 * times, 2_000),
  };
}

export function createRedis(url: string, role: ConnectionRole): Redis {
  const client = new Redis(url, { ...redisOptions(role), lazyConnect: false });
  // Without a listener ioredis prints every reconnect error; callers observe state through ping().
  client.on("error", () => {});
  return client;
}

/** Reject after `ms` so callers on the webhook path never wait on Redis longer than they can afford. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ping Redis within `ms`; resolves to an error message, or null when it answered. */
export async function checkRedis(url: string, ms = 2_000): Promise<string | null> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: ms,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await withTimeout(client.connect(), ms, "connecting to Redis");
    await withTimeout(client.ping(), ms, "Redis PING");
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    client.disconnect();
  }
}
