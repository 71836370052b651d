import { readFileSync } from "node:fs";
import { z } from "zod";
import { registerEnvSecrets } from "../shared/redact.js";
import { POOL_NAMES } from "./pools.js";
import { hashTagOf, parseHostPorts, type RedisEndpoint, type RedisTopology } from "./redis-topology.js";

/** Probot's built-in webhook secret; a production service must never accept it. */
export const PROBOT_DEFAULT_SECRET = "development";

/** Which process is starting: each needs a different part of the settings. */
export type Role = "web" | "worker" | "cli";

export const DEFAULT_MODEL = "claude-sonnet-5";

const csv = z
  .string()
  .optional()
  .transform((s) =>
    (s ?? "")
      .split(/[,\s]+/)
      .map((x) => x.trim())
      .filter(Boolean),
  );

/** `NAME=` in an .env file or compose's `${NAME:-}` means "not set" for the optional settings below. */
const unsetWhenEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema);

/** A positive number (fractions too); unset or `NAME=` means the default. */
const positiveNumber = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === "") return fallback;
      const n = Number(raw);
      if (Number.isFinite(n) && n > 0) return n;
      ctx.addIssue({ code: "custom", message: `must be a positive number, got "${raw}"` });
      return z.NEVER;
    });

const envSchema = z.object({
  NODE_ENV: z.string().default("development"),
  APP_ID: z.string().regex(/^\d+$/, "must be the numeric App ID from the app's settings page").optional(),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string().optional(),
  REDIS_URL: z
    .string()
    .default("redis://127.0.0.1:6379")
    .refine((u) => /^rediss?:\/\//.test(u), "must start with redis:// or rediss://"),
  /** BullMQ key prefix; use a hash tag such as {autofix} on Redis Cluster. */
  AUTOFIX_QUEUE_PREFIX: z.string().min(1).default("autofix"),
  /** Pools this web process accepts jobs for (all known pools by default). */
  AUTOFIX_POOLS: csv,
  /** Pools this worker serves (detected from hardware when empty). */
  AUTOFIX_WORKER_POOLS: csv,
  /** The Claude model the agent uses (workers; `autofix doctor` checks it). */
  AUTOFIX_MODEL: z.string().min(1).default(DEFAULT_MODEL),
  /** Mirror cache, workspaces and the credential helper on a worker host. */
  AUTOFIX_WORK_DIR: z.string().min(1).default(".autofix"),
  /**
   * Worker: build caches (a ccache folder per installation, repository and build
   * configuration, bound read-write into the job's sandbox); unset means
   * $AUTOFIX_WORK_DIR/caches, `off` keeps none.
   */
  AUTOFIX_CACHE_DIR: unsetWhenEmpty(z.string().optional()),
  /** Worker: the size cap of each compiler cache (ccache's max_size: 20G, 500M). */
  AUTOFIX_CACHE_MAX_SIZE: unsetWhenEmpty(
    z
      .string()
      .regex(/^\d+(\.\d+)?[KMGT]i?$/, "must be a size such as 20G or 500M")
      .default("20G"),
  ),
  /**
   * Worker: build tree reuse, off by default: top-level folders of the work tree (e.g. `build`)
   * kept per installation, repository and pool and moved into that repository's next job.
   */
  AUTOFIX_BUILD_TREE_REUSE: csv,
  /** Worker: check submodules out (recursively) and fetch Git LFS content (default on). */
  AUTOFIX_SUBMODULES: unsetWhenEmpty(
    z
      .enum(["on", "off", "true", "false", "1", "0"])
      .default("on")
      .transform((v) => v === "on" || v === "true" || v === "1"),
  ),
  /** Worker: where the card device nodes are. */
  AUTOFIX_DEVICE_DIR: z.string().default("/dev/tenstorrent"),
  /** Worker: where job reports are written; unset means $AUTOFIX_WORK_DIR/reports. */
  AUTOFIX_REPORT_DIR: z.string().optional(),
  /** Worker: the card reset between jobs; wins over the repository's commands.reset. */
  AUTOFIX_RESET_COMMAND: unsetWhenEmpty(z.string().optional()),
  /** Worker: the time a running job gets after SIGTERM. */
  AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: positiveNumber(60),
  /** Worker: the hard limit of one attempt (then "timed out"). */
  AUTOFIX_JOB_TIMEOUT_MINUTES: positiveNumber(120),
  /**
   * Worker and `autofix run`: how long a model outage (500, 529, a proxy's 502, a dropped
   * connection, after the SDK's own retries) is waited out, with backoff, before the job fails.
   */
  AUTOFIX_MODEL_OUTAGE_MINUTES: positiveNumber(5),
  /** Worker: parallel jobs on the cpu pool (the whole part of the number). */
  AUTOFIX_CPU_CONCURRENCY: positiveNumber(1),
  /**
   * Web: the time a webhook may spend on GitHub reads before its job is enqueued (permission,
   * repository config, head commit), well under GitHub's 10 s and Probot's 9 s "still
   * processing": past it the delivery answers 503 and can be redelivered.
   */
  AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS: positiveNumber(5),
  /** Web: the longest one of those GitHub reads may take (no retries inside the webhook). */
  AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS: positiveNumber(3),
  /**
   * Where a job's commands run: `auto` (a container when an image is configured and the engine
   * answers, else bubblewrap when installed, else refuse), `container`, `bwrap`, or `none`
   * (the host, with the service's uid: only when asked for by name).
   */
  AUTOFIX_SANDBOX: unsetWhenEmpty(z.enum(["auto", "container", "bwrap", "none"]).default("auto")),
  /** Container backend: the image every job runs in (unless its pool has its own). */
  AUTOFIX_SANDBOX_IMAGE: unsetWhenEmpty(z.string().optional()),
  /** Container backend: images per pool, `pool=image,pool=image`. */
  AUTOFIX_SANDBOX_POOL_IMAGES: csv,
  /** Container backend: the docker- or podman-compatible CLI. */
  AUTOFIX_CONTAINER_ENGINE: z.string().min(1).default("podman"),
  /** Container backend: flags before the subcommand (space-separated; unset: the engine's defaults). */
  AUTOFIX_CONTAINER_GLOBAL_ARGS: unsetWhenEmpty(z.string().optional()),
  /** Container backend: extra `run` flags (space-separated; unset: the engine's defaults). */
  AUTOFIX_CONTAINER_RUN_ARGS: unsetWhenEmpty(z.string().optional()),
  /** The sandbox's uid and gid when the service runs as root. */
  AUTOFIX_SANDBOX_UID: z.coerce.number().int().min(1).default(65534),
  AUTOFIX_SANDBOX_GID: z.coerce.number().int().min(1).default(65534),
  /** Repositories (owner/name) whose jobs may use the network; none by default. */
  AUTOFIX_SANDBOX_NETWORK_REPOS: csv,
  /**
   * Container backend: image prefixes a repository may pick (its autofix.yml `environment.image`
   * or its failed CI job's `container.image`), e.g. `ghcr.io/tenstorrent/`. Unset: only the
   * configured images (AUTOFIX_SANDBOX_IMAGE, AUTOFIX_SANDBOX_POOL_IMAGES).
   */
  AUTOFIX_SANDBOX_IMAGE_PREFIXES: csv,
  /**
   * Operator-side mounts per pool: `pool:/host/path:/container/path[:ro|:rw]`, comma-separated,
   * `*` for every pool (model weights, caches, hugepages). Read-only unless `:rw`.
   */
  AUTOFIX_SANDBOX_MOUNTS: csv,
  /** Worker: the most bytes a CI build artifact may unpack to (default 40 GiB). */
  AUTOFIX_ARTIFACT_MAX_BYTES: positiveNumber(40 * 1024 ** 3),
  ANTHROPIC_API_KEY: z.string().optional(),
  /** The SDK's alternative to an API key. */
  ANTHROPIC_AUTH_TOKEN: z.string().optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  GHE_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, "must be a host name such as github.example.com, without https://")
    .optional(),
  GHE_PROTOCOL: z.enum(["https", "http"]).default("https"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().optional(),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Queue dashboard (/admin/queues) HTTP Basic credentials; the dashboard is off unless both are set. */
  AUTOFIX_DASHBOARD_USER: unsetWhenEmpty(z.string().optional()),
  AUTOFIX_DASHBOARD_PASSWORD: unsetWhenEmpty(z.string().min(12, "must be at least 12 characters").optional()),
  /** Redis Sentinel: host:port,host:port of the sentinels and the monitored master's name. */
  REDIS_SENTINELS: unsetWhenEmpty(z.string().optional()),
  REDIS_SENTINEL_NAME: unsetWhenEmpty(z.string().optional()),
  REDIS_SENTINEL_PASSWORD: unsetWhenEmpty(z.string().optional()),
  /** Redis Cluster: host:port,... of some of the cluster's nodes. */
  REDIS_CLUSTER_NODES: unsetWhenEmpty(z.string().optional()),
});

export type RawSettings = z.infer<typeof envSchema>;

export interface Settings extends RawSettings {
  production: boolean;
  /** Private key contents (from PRIVATE_KEY or PRIVATE_KEY_PATH), if any. */
  privateKey: string | undefined;
  /** Pools accepted by this deployment. */
  pools: string[];
  /** API base URL for github.com or GitHub Enterprise Server. */
  githubApiUrl: string;
  /** Web base URL (for links and clone URLs). */
  githubWebUrl: string;
  /** How Redis is reached: one server, Sentinel or Cluster (REDIS_SENTINELS / REDIS_CLUSTER_NODES). */
  redisTopology: RedisTopology;
}

export type SettingsResult = { ok: true; settings: Settings } | { ok: false; problems: string[] };

/** Every setting, and what is wrong with them; see readSettings. */
export interface SettingsRead {
  settings: Settings;
  problems: string[];
}

/**
 * Validate the service's environment. Returns every problem at once, one line each, so an
 * operator fixes them in one go. Registers secret values with the redactor.
 */
export function loadSettings(env: NodeJS.ProcessEnv, role: Role): SettingsResult {
  const read = readSettings(env, role);
  return read.problems.length > 0
    ? { ok: false, problems: read.problems }
    : { ok: true, settings: read.settings };
}

/**
 * Read every setting and list every problem in one pass: the values that are malformed and
 * what the role needs but does not have. A malformed value is replaced by its default after
 * it is listed, so a caller can still act on the rest before it reports the problems (the
 * worker checks its hardware, which needs no secret, first). Use the settings for nothing else
 * while there are problems: loadSettings is the ordinary way in.
 */
export function readSettings(env: NodeJS.ProcessEnv, role: Role): SettingsRead {
  registerEnvSecrets(env);
  const problems: string[] = [];
  /** Settings whose value is malformed: their problem is said, checks built on them are skipped. */
  const malformed = new Set<string>();
  let parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join(".")}: ${issue.message}`);
      malformed.add(String(issue.path[0]));
    }
    parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([k]) => !malformed.has(k))));
    // Every setting is optional or has a valid default, so without the malformed ones it parses.
    if (!parsed.success) throw new Error(`settings defaults do not parse: ${parsed.error.message}`);
  }
  const raw = parsed.data;
  const production = raw.NODE_ENV === "production";

  let privateKey = raw.PRIVATE_KEY;
  if (!privateKey && raw.PRIVATE_KEY_PATH) {
    try {
      privateKey = readFileSync(raw.PRIVATE_KEY_PATH, "utf8");
    } catch (err) {
      problems.push(
        `PRIVATE_KEY_PATH: cannot read ${raw.PRIVATE_KEY_PATH} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
  }
  if (privateKey && !privateKey.includes("-----BEGIN")) {
    // Probot accepts base64-encoded keys; decode to check it is a PEM.
    const decoded = Buffer.from(privateKey, "base64").toString("utf8");
    if (decoded.includes("-----BEGIN")) privateKey = decoded;
    else
      problems.push(
        "PRIVATE_KEY: is not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----, or its base64)",
      );
  }

  const needsApp = role === "worker" || (role === "web" && production);
  if (needsApp) {
    if (!raw.APP_ID && !malformed.has("APP_ID"))
      problems.push("APP_ID: missing; set it to the App ID from the GitHub App's settings page");
    if (!privateKey && !raw.PRIVATE_KEY_PATH)
      problems.push(
        "PRIVATE_KEY: missing; set PRIVATE_KEY (PEM or base64) or PRIVATE_KEY_PATH to the app's .pem file",
      );
  }
  if (role === "web" && production) {
    if (!raw.WEBHOOK_SECRET) {
      problems.push(
        "WEBHOOK_SECRET: missing; production needs the secret configured in the app's webhook settings",
      );
    } else if (raw.WEBHOOK_SECRET === PROBOT_DEFAULT_SECRET) {
      problems.push(
        `WEBHOOK_SECRET: still Probot's default "${PROBOT_DEFAULT_SECRET}"; anyone could forge webhooks. Set a random secret`,
      );
    } else if (raw.WEBHOOK_SECRET.length < 16) {
      problems.push("WEBHOOK_SECRET: shorter than 16 characters; use a long random value");
    }
  }
  if (role === "worker" && !raw.ANTHROPIC_API_KEY && !raw.ANTHROPIC_AUTH_TOKEN) {
    problems.push("ANTHROPIC_API_KEY: missing; workers call the Claude API");
  }

  for (const [name, list] of [
    ["AUTOFIX_POOLS", raw.AUTOFIX_POOLS],
    ["AUTOFIX_WORKER_POOLS", raw.AUTOFIX_WORKER_POOLS],
  ] as const) {
    const unknown = list.filter((p) => !POOL_NAMES.includes(p));
    if (unknown.length > 0) {
      problems.push(
        `${name}: unknown pool${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (known: ${POOL_NAMES.join(", ")})`,
      );
    }
  }

  const dashboardMalformed =
    malformed.has("AUTOFIX_DASHBOARD_USER") || malformed.has("AUTOFIX_DASHBOARD_PASSWORD");
  if (!dashboardMalformed && !!raw.AUTOFIX_DASHBOARD_USER !== !!raw.AUTOFIX_DASHBOARD_PASSWORD) {
    problems.push(
      "AUTOFIX_DASHBOARD_USER / AUTOFIX_DASHBOARD_PASSWORD: set both to turn the queue dashboard on, or neither",
    );
  }
  const redisTopology = topologyOf(raw, problems, malformed);

  const githubWebUrl = raw.GHE_HOST ? `${raw.GHE_PROTOCOL}://${raw.GHE_HOST}` : "https://github.com";
  const githubApiUrl = raw.GHE_HOST ? `${githubWebUrl}/api/v3` : "https://api.github.com";
  return {
    problems,
    settings: {
      ...raw,
      production,
      privateKey,
      pools: raw.AUTOFIX_POOLS.length > 0 ? raw.AUTOFIX_POOLS : [...POOL_NAMES],
      githubApiUrl,
      githubWebUrl,
      redisTopology,
    },
  };
}

/** Where the settings say Redis is: pass it to createRedis, checkRedis and JobQueues. */
export function redisEndpoint(settings: Pick<Settings, "REDIS_URL" | "redisTopology">): RedisEndpoint {
  return { url: settings.REDIS_URL, topology: settings.redisTopology };
}

/** Sentinel or Cluster from the environment; problems for a person when they do not add up. */
function topologyOf(raw: RawSettings, problems: string[], malformed: ReadonlySet<string>): RedisTopology {
  const sentinels = raw.REDIS_SENTINELS?.trim();
  const cluster = raw.REDIS_CLUSTER_NODES?.trim();
  if (sentinels && cluster) {
    problems.push("REDIS_SENTINELS / REDIS_CLUSTER_NODES: set one of them, not both");
    return { kind: "standalone" };
  }
  if (sentinels) {
    const parsed = parseHostPorts(sentinels);
    if (!parsed.ok) problems.push(`REDIS_SENTINELS: ${parsed.error} (expected host:port,host:port)`);
    if (!raw.REDIS_SENTINEL_NAME)
      problems.push("REDIS_SENTINEL_NAME: missing; set it to the master group name the sentinels monitor");
    if (!parsed.ok || !raw.REDIS_SENTINEL_NAME) return { kind: "standalone" };
    return {
      kind: "sentinel",
      sentinels: parsed.value,
      name: raw.REDIS_SENTINEL_NAME,
      ...(raw.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: raw.REDIS_SENTINEL_PASSWORD } : {}),
    };
  }
  if (raw.REDIS_SENTINEL_NAME) problems.push("REDIS_SENTINEL_NAME: set without REDIS_SENTINELS");
  if (cluster) {
    const parsed = parseHostPorts(cluster);
    if (!parsed.ok) problems.push(`REDIS_CLUSTER_NODES: ${parsed.error} (expected host:port,host:port)`);
    if (!malformed.has("AUTOFIX_QUEUE_PREFIX") && hashTagOf(raw.AUTOFIX_QUEUE_PREFIX) === null) {
      problems.push(
        `AUTOFIX_QUEUE_PREFIX: "${raw.AUTOFIX_QUEUE_PREFIX}" has no hash tag; on Redis Cluster BullMQ needs one so each queue's keys share a slot: use {${raw.AUTOFIX_QUEUE_PREFIX.replace(/[{}]/g, "") || "autofix"}}`,
      );
    }
    if (!parsed.ok) return { kind: "standalone" };
    return { kind: "cluster", nodes: parsed.value };
  }
  return { kind: "standalone" };
}

/** Format problems for a person at a terminal: one line each. */
export function formatProblems(title: string, problems: string[]): string {
  return [`${title}:`, ...problems.map((p) => `  - ${p}`)].join("\n");
}
