/**
 * Redis beyond one machine, as settings: loadSettings reads the topology from the environment
 * and every connection is built from an explicit RedisEndpoint (src/queue/redis.ts):
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

/** Where a connection goes: REDIS_URL and how Redis is reached. */
export interface RedisEndpoint {
  url: string;
  topology: RedisTopology;
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
