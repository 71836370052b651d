import { Cluster, Redis, type RedisOptions } from "ioredis";

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
  const client = buildClient(url, { ...redisOptions(role), lazyConnect: false });
  // Without a listener ioredis prints every reconnect error; callers observe state through ping().
  client.on("error", () => {});
  return client;
}

/**
 * Redis beyond one machine. The topology is read from the environment by loadSettings (the
 * web process, workers and the CLI all call it) and applies to every connection createRedis
 * and checkRedis build afterwards:
 * - standalone: REDIS_URL;
 * - sentinel: REDIS_SENTINELS=host:port,host:port and REDIS_SENTINEL_NAME (the master group);
 *   REDIS_SENTINEL_PASSWORD when the sentinels themselves require one;
 * - cluster: REDIS_CLUSTER_NODES=host:port,... (any reachable subset of the nodes); BullMQ then
 *   needs a hash-tagged AUTOFIX_QUEUE_PREFIX such as {autofix} so a queue's keys share a slot.
 * In sentinel and cluster mode REDIS_URL still gives the username, password, TLS (rediss://)
 * and database; its host and port are not used.
 */
export type RedisTopology =
  | { kind: "standalone" }
  | { kind: "sentinel"; sentinels: HostPort[]; name: string; sentinelPassword?: string }
  | { kind: "cluster"; nodes: HostPort[] };

export interface HostPort {
  host: string;
  port: number;
}

let topology: RedisTopology = { kind: "standalone" };

/** Set the topology for connections built from now on (loadSettings calls this). */
export function useRedisTopology(t: RedisTopology): void {
  topology = t;
}

export function currentRedisTopology(): RedisTopology {
  return topology;
}

/** Parse "host:port,host:port" (IPv6 as [addr]:port); null with a reason when malformed. */
export function parseHostPorts(list: string): { ok: true; value: HostPort[] } | { ok: false; error: string } {
  const items = list
    .split(/[,\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);
  if (items.length === 0) return { ok: false, error: "is empty" };
  const out: HostPort[] = [];
  for (const item of items) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) return { ok: false, error: `"${item}" is not host:port` };
    out.push({ host: (m[1] ?? m[2])!, port });
  }
  return { ok: true, value: out };
}

/**
 * The hash tag Redis Cluster hashes a key by: the text between the first "{" and the next "}",
 * when not empty (the Redis Cluster specification). Null when the prefix has none.
 */
export function hashTagOf(key: string): string | null {
  const open = key.indexOf("{");
  if (open < 0) return null;
  const close = key.indexOf("}", open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
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
 * Build a client for the current topology. A Cluster is returned typed as Redis: BullMQ
 * accepts both, and the commands this service uses (strings, hashes, sorted sets, MULTI on
 * one hash tag, pub/sub, PING, INFO) exist on both with the same signatures.
 */
function buildClient(url: string, options: RedisOptions, t: RedisTopology = topology): Redis {
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
export async function checkRedis(url: string, ms = 2_000): Promise<string | null> {
  const client = buildClient(url, {
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
