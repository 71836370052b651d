import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { RedisEndpoint } from "../config/redis-topology.js";

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

/**
 * Where to connect: an endpoint from the settings (REDIS_URL and its topology, see
 * src/config/redis-topology.ts), or a bare URL for one standalone server (tests, benches).
 */
export type RedisTarget = string | RedisEndpoint;

function endpointOf(target: RedisTarget): RedisEndpoint {
  return typeof target === "string" ? { url: target, topology: { kind: "standalone" } } : target;
}

export function createRedis(target: RedisTarget, role: ConnectionRole): Redis {
  const client = buildClient(endpointOf(target), { ...redisOptions(role), lazyConnect: false });
  // Without a listener ioredis prints every reconnect error; callers observe state through ping().
  client.on("error", () => {});
  return client;
}

/** Options REDIS_URL contributes in every topology: credentials, TLS and database. */
function urlOptions(url: string): RedisOptions {
  const u = new URL(url);
  const out: RedisOptions = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  if (u.protocol === "rediss:") out.tls = {};
  const db = u.pathname.replace(/^\//, "");
  if (db && /^\d+$/.test(db)) out.db = Number(db);
  return out;
}

/**
 * Build a client for the endpoint's topology. A Cluster is returned typed as Redis: BullMQ
 * accepts both, and the commands this service uses (strings, hashes, sorted sets, MULTI on
 * one hash tag, pub/sub, PING, INFO) exist on both with the same signatures.
 */
function buildClient({ url, topology: t }: RedisEndpoint, options: RedisOptions): Redis {
  if (t.kind === "standalone") return new Redis(url, options);
  const fromUrl = urlOptions(url);
  if (t.kind === "sentinel") {
    return new Redis({
      ...fromUrl,
      ...options,
      sentinels: t.sentinels,
      name: t.name,
      ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(fromUrl.tls ? { enableTLSForSentinelMode: true } : {}),
    });
  }
  // BullMQ reads maxRetriesPerRequest from the cluster's redisOptions; retries, the offline
  // queue and lazy connect are cluster-level settings.
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...nodeOptions } = options;
  const cluster = new Cluster(t.nodes, {
    redisOptions: { ...fromUrl, ...nodeOptions },
    ...(retryStrategy ? { clusterRetryStrategy: retryStrategy } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
  });
  return cluster as unknown as Redis;
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
export async function checkRedis(target: RedisTarget, ms = 2_000): Promise<string | null> {
  const client = buildClient(endpointOf(target), {
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

/**
 * The production settings BullMQ depends on, as warnings for the start-up log (empty when
 * all is well): `maxmemory-policy` must be `noeviction` (an evicted job key is a lost job),
 * and persistence (AOF or RDB snapshots) must be on, or a Redis restart drops every queued job.
 * On a Cluster every master is checked. Managed Redis often hides CONFIG: INFO is read first,
 * and what cannot be read is reported as unknown rather than as a failure.
 */
export async function redisProductionChecks(redis: Redis): Promise<string[]> {
  const cluster = (redis as unknown as { isCluster?: boolean }).isCluster === true;
  const nodes: Array<{ label: string; client: Redis }> = cluster
    ? (redis as unknown as Cluster)
        .nodes("master")
        .map((n) => ({ label: `${n.options.host}:${n.options.port}`, client: n }))
    : [{ label: "", client: redis }];
  const warnings: string[] = [];
  for (const { label, client } of nodes) {
    const where = label ? ` on ${label}` : "";
    try {
      const memory = parseInfo(String(await client.info("memory")));
      const persistence = parseInfo(String(await client.info("persistence")));
      let save: string | null = null;
      try {
        const reply = (await client.config("GET", "save")) as unknown as string[];
        save = reply[1] ?? "";
      } catch {
        save = null; // CONFIG disabled (managed Redis)
      }
      warnings.push(...productionWarnings({ memory, persistence, save }).map((w) => `${w}${where}`));
    } catch (err) {
      warnings.push(`could not read the Redis settings${where}: ${(err as Error).message}`);
    }
  }
  return warnings;
}

/** INFO's "key:value" lines as a record. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The pure part of redisProductionChecks: INFO sections and the `save` setting (null when unreadable). */
export function productionWarnings(input: {
  memory: Record<string, string>;
  persistence: Record<string, string>;
  save: string | null;
}): string[] {
  const out: string[] = [];
  const policy = input.memory.maxmemory_policy;
  if (policy === undefined)
    out.push("maxmemory-policy is unknown (INFO memory does not show it); BullMQ needs noeviction");
  else if (policy !== "noeviction")
    out.push(
      `maxmemory-policy is ${policy}; BullMQ needs noeviction (an evicted job key is a lost job): CONFIG SET maxmemory-policy noeviction`,
    );
  const aof = input.persistence.aof_enabled === "1";
  const rdb = input.save !== null && input.save.trim() !== "";
  if (!aof && !rdb) {
    out.push(
      input.save === null
        ? "persistence: AOF is off and the RDB snapshot setting cannot be read (CONFIG is disabled); make sure snapshots or AOF are on, or a restart loses every queued job"
        : "persistence is off (no AOF, no RDB snapshots): a Redis restart loses every queued job; turn on appendonly yes",
    );
  }
  return out;
}
