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

/** Ping Redis within `ms`; resolves to why it cannot be used, for a person ("connection refused at 127.0.0.1:6379"), or null when it answered. */
export async function checkRedis(target: RedisTarget, ms = 2_000): Promise<string | null> {
  const endpoint = endpointOf(target);
  const client = buildClient(endpoint, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: ms,
    retryStrategy: () => null,
  });
  // ioredis rejects with "Connection is closed." once the socket is gone: the cause is the
  // last 'error' event (ECONNREFUSED, ENOTFOUND, ...), which is what a person needs to read.
  let cause: unknown;
  client.on("error", (err) => {
    cause ??= err;
  });
  try {
    await withTimeout(client.connect(), ms, "connecting to Redis");
    await withTimeout(client.ping(), ms, "Redis PING");
    return null;
  } catch (err) {
    return describeRedisError(cause ?? err, endpoint, { timeoutMs: ms });
  } finally {
    client.disconnect();
  }
}

/** host:port of a redis:// URL (6379 when the URL has no port); the URL itself when it does not parse. */
function hostPortOf(url: string): { host: string; port: number } | null {
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1", port: u.port ? Number(u.port) : 6379 };
  } catch {
    return null;
  }
}

/** A REDIS_URL for a person to read: the password replaced by the redactor's `[REDACTED]`. */
export function displayRedisUrl(url: string): string {
  const hidden = "autofix-hidden-password";
  try {
    const u = new URL(url);
    if (u.password) u.password = hidden;
    return u.toString().replace(/\/$/, "").replace(`:${hidden}@`, ":[REDACTED]@");
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:[REDACTED]@");
  }
}

/**
 * Where an endpoint points, for messages: `127.0.0.1:6379`, `sentinels a:26379,b:26379 (master
 * mymaster)`, `cluster nodes a:7000,b:7001`. Pure.
 */
export function describeRedisEndpoint(target: RedisTarget): string {
  const { url, topology: t } = endpointOf(target);
  const list = (nodes: Array<{ host: string; port: number }>) =>
    nodes.map((n) => `${n.host.includes(":") ? `[${n.host}]` : n.host}:${n.port}`).join(",");
  if (t.kind === "sentinel") return `sentinels ${list(t.sentinels)} (master ${t.name})`;
  if (t.kind === "cluster") return `cluster nodes ${list(t.nodes)}`;
  const hp = hostPortOf(url);
  return hp ? list([hp]) : displayRedisUrl(url);
}

/**
 * An ioredis or Node error as one sentence naming the address and the cause: "connection
 * refused at 127.0.0.1:6379", "host not found: redis.internal", "timed out after 5 s
 * connecting to 10.0.0.5:6379". The address the socket reports wins over the endpoint's (a
 * sentinel's master, a cluster node). Messages that only say the socket is gone ("Connection is
 * closed.", "Stream isn't writeable") become "no connection to ...". Pure.
 */
export function describeRedisError(
  err: unknown,
  target: RedisTarget,
  opts: { timeoutMs?: number } = {},
): string {
  const e = (err ?? {}) as NodeJS.ErrnoException & {
    address?: string;
    port?: number;
    hostname?: string;
    errors?: unknown[];
  };
  // Node's happy-eyeballs connect reports every address it tried in an AggregateError.
  if (Array.isArray(e.errors) && e.errors.length > 0 && !e.code)
    return describeRedisError(e.errors[0], target, opts);
  const message = String(e.message ?? err ?? "");
  const fromEndpoint = describeRedisEndpoint(target);
  const at =
    e.address !== undefined
      ? `${e.address.includes(":") ? `[${e.address}]` : e.address}${e.port ? `:${e.port}` : ""}`
      : fromEndpoint;
  const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  const code = e.code ?? /\b(E[A-Z]{4,}|EAI_[A-Z]+)\b/.exec(message)?.[1];
  switch (code) {
    case "ECONNREFUSED":
      return `connection refused at ${at}`;
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "EAI_AGAIN":
    case "EAI_FAIL": {
      const host =
        e.hostname ??
        /(?:ENOTFOUND|EAI_\w+)\s+(\S+)/.exec(message)?.[1] ??
        hostPortOf(endpointOf(target).url)?.host ??
        at;
      return code === "EAI_AGAIN"
        ? `host not found (DNS did not answer): ${host}`
        : `host not found: ${host}`;
    }
    case "ETIMEDOUT":
      return `timed out${opts.timeoutMs ? ` after ${seconds(opts.timeoutMs)}` : ""} connecting to ${at}`;
    case "ECONNRESET":
    case "EPIPE":
      return `the connection to ${at} was reset (is it a Redis server? TLS needs rediss://)`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to ${at} (${code})`;
    case "EACCES":
    case "EPERM":
      return `not allowed to connect to ${at} (${code})`;
    case "CERT_HAS_EXPIRED":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `TLS certificate of ${at} refused (${code})`;
  }
  if (/took longer than/.test(message))
    return `timed out${opts.timeoutMs ? ` after ${seconds(opts.timeoutMs)}` : ""} ${/PING/.test(message) ? "waiting for PING from" : "connecting to"} ${at}`;
  if (/^(WRONGPASS|NOAUTH)|invalid password|invalid username-password/i.test(message))
    return `authentication failed at ${at}: ${message.replace(/\.$/, "")} (check the user and password in REDIS_URL)`;
  if (/Unknown RESP type|Protocol error/i.test(message))
    return `something other than Redis answered at ${at} (${message.split("\n")[0]!.replace(/\.?\s*Please report this\.?/, "")})`;
  if (/All sentinels are unreachable/i.test(message)) return `no sentinel answers: ${fromEndpoint}`;
  if (/Failed to refresh slots cache|None of startup nodes is available/i.test(message))
    return `no cluster node answers: ${fromEndpoint}`;
  if (
    /Connection is closed|Stream isn't writeable|enableOfflineQueue|Connection in subscriber mode/i.test(
      message,
    ) ||
    !message
  )
    return `no connection to ${at}`;
  return `${message.split("\n")[0]} (at ${at})`;
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
