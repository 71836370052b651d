import Anthropic from "@anthropic-ai/sdk";
import { execa } from "execa";
import { ProbotOctokit } from "probot";
import { DEFAULT_MODEL, loadSettings, redisEndpoint } from "../../config/env.js";
import type { RedisEndpoint } from "../../config/redis-topology.js";
import { checkRedis, describeRedisEndpoint, describeRedisError, displayRedisUrl } from "../../queue/redis.js";
import { redact } from "../../shared/redact.js";
import { detectHardware, type Hardware, summarizeBoards } from "../../worker/hardware.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand } from "../command.js";

export type CheckLevel = "ok" | "warn" | "fail";
export interface CheckLine {
  level: CheckLevel;
  name: string;
  detail: string;
}

/** The outside world the checks look at; tests replace each part. */
export interface DoctorDeps {
  env: NodeJS.ProcessEnv;
  nodeVersion: string;
  gitVersion: () => Promise<string>;
  /** Null when Redis answers, else why not. */
  redis: (endpoint: RedisEndpoint) => Promise<string | null>;
  /** The App's slug when its credentials authenticate, else throws. */
  app: (settings: { appId: string; privateKey: string; baseUrl: string }) => Promise<string>;
  /** Resolves when the key can read the model, else throws. */
  model: (model: string) => Promise<void>;
  /** The cards in the device folder (AUTOFIX_DEVICE_DIR) and what tt-smi says of them. */
  hardware: (deviceDir: string) => Promise<Hardware>;
}

function versionAtLeast(v: string, min: [number, number, number]): boolean {
  const parts = v.replace(/^v/, "").split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i]!;
  }
  return true;
}

/** Every check, one line each. Never throws: a check that errors is a failed line. */
export async function runDoctor(deps: DoctorDeps): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const add = (level: CheckLevel, name: string, detail: string) =>
    lines.push({ level, name, detail: redact(detail) });

  add(
    versionAtLeast(deps.nodeVersion, [20, 18, 1]) ? "ok" : "fail",
    "node",
    `${deps.nodeVersion}${versionAtLeast(deps.nodeVersion, [20, 18, 1]) ? "" : " (needs 20.18.1 or newer)"}`,
  );
  try {
    add("ok", "git", await deps.gitVersion());
  } catch (err) {
    add("fail", "git", `not usable: ${(err as Error).message}`);
  }

  const loaded = loadSettings(deps.env, "cli");
  if (!loaded.ok) {
    for (const p of loaded.problems) add("fail", "settings", p);
    return lines;
  }
  const s = loaded.settings;
  const endpoint = redisEndpoint(s);
  const redisProblem = await deps.redis(endpoint).catch((e: unknown) => describeRedisError(e, endpoint));
  // The URL as configured (password hidden); Sentinel and Cluster also name the nodes asked.
  const where =
    s.redisTopology.kind === "standalone"
      ? displayRedisUrl(s.REDIS_URL)
      : `${displayRedisUrl(s.REDIS_URL)} via ${describeRedisEndpoint(endpoint)}`;
  add(
    redisProblem ? "fail" : "ok",
    "redis",
    redisProblem ? `cannot reach ${where}: ${redisProblem}` : `${where} answers`,
  );

  if (!s.APP_ID || !s.privateKey) {
    add(
      "warn",
      "github app",
      "APP_ID / PRIVATE_KEY not set: fine for `autofix run`, required for the service and workers",
    );
  } else {
    try {
      const slug = await deps.app({ appId: s.APP_ID, privateKey: s.privateKey, baseUrl: s.githubApiUrl });
      add("ok", "github app", `authenticated as ${slug} (app ${s.APP_ID}) on ${s.githubApiUrl}`);
    } catch (err) {
      add(
        "fail",
        "github app",
        `app ${s.APP_ID} cannot authenticate on ${s.githubApiUrl}: ${(err as Error).message}`,
      );
    }
  }
  if (s.production && s.WEBHOOK_SECRET === undefined)
    add("fail", "webhook secret", "WEBHOOK_SECRET is not set");

  if (!s.ANTHROPIC_API_KEY && !s.ANTHROPIC_AUTH_TOKEN) {
    add("fail", "anthropic", "ANTHROPIC_API_KEY is not set: the agent cannot call Claude");
  } else {
    try {
      await deps.model(s.AUTOFIX_MODEL);
      add(
        "ok",
        "anthropic",
        `key works; model ${s.AUTOFIX_MODEL} is available${s.AUTOFIX_MODEL === DEFAULT_MODEL ? " (default)" : ""}`,
      );
    } catch (err) {
      const status = (err as { status?: number }).status;
      const why =
        status === 401
          ? "the key was refused"
          : status === 404
            ? `model ${s.AUTOFIX_MODEL} does not exist`
            : (err as Error).message;
      add("fail", "anthropic", why);
    }
  }

  try {
    const hw = await deps.hardware(s.AUTOFIX_DEVICE_DIR);
    if (hw.devices.length === 0 && !hw.ttSmi)
      add(
        "warn",
        "tt cards",
        `none (${hw.deviceDir} is empty or missing; tt-smi not on PATH): this host serves the cpu pool only`,
      );
    else {
      const boards = hw.boards
        ? summarizeBoards(hw.boards)
        : hw.ttSmiError
          ? `tt-smi failed: ${hw.ttSmiError}`
          : "tt-smi not on PATH";
      add(
        hw.ttSmiError ? "warn" : "ok",
        "tt cards",
        `${hw.devices.length} device node(s) in ${hw.deviceDir}; ${boards}`,
      );
    }
  } catch (err) {
    add("warn", "tt cards", `could not look: ${(err as Error).message}`);
  }
  return lines;
}

export function productionDoctorDeps(env: NodeJS.ProcessEnv): DoctorDeps {
  return {
    env,
    nodeVersion: process.version,
    gitVersion: async () => (await execa("git", ["--version"], { timeout: 5000 })).stdout.trim(),
    redis: (endpoint) => checkRedis(endpoint),
    app: async ({ appId, privateKey, baseUrl }) => {
      const octokit = new ProbotOctokit({
        auth: { appId, privateKey },
        baseUrl,
        retry: { enabled: false },
        throttle: { enabled: false },
      });
      const { data } = await octokit.rest.apps.getAuthenticated();
      return data?.slug ?? data?.name ?? "unknown";
    },
    model: async (model) => {
      const client = new Anthropic({ maxRetries: 0, timeout: 10_000 });
      await client.models.retrieve(model);
    },
    hardware: (deviceDir) => detectHardware({ env, deviceDir, timeoutMs: 15_000 }),
  };
}

const DOCTOR: CommandSpec = {
  usage: "autofix doctor",
  summary:
    "check Node, git, Redis, App credentials, the Anthropic key and model, tt-smi and cards (one line each; exit 1 when a check fails)",
  notes: ["The settings come from the environment (the same variables as the service and the worker)."],
};

export const doctorCommand: CliCommand = {
  name: ["doctor"],
  usage: DOCTOR.usage,
  summary: DOCTOR.summary,
  async run(args, io) {
    const parsed = parseCommand(DOCTOR, args, io);
    if (typeof parsed === "number") return parsed;
    const lines = await runDoctor(productionDoctorDeps(io.env));
    const mark: Record<CheckLevel, string> = { ok: "ok  ", warn: "warn", fail: "FAIL" };
    for (const l of lines) io.out(`${mark[l.level]}  ${l.name.padEnd(14)} ${l.detail}`);
    return lines.some((l) => l.level === "fail") ? EXIT.failed : EXIT.ok;
  },
};
