import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings, readSettings } from "../../src/config/env.js";
import { DEFAULT_DEVICE_DIR } from "../../src/worker/hardware.js";

const KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n";

function problems(env: Record<string, string>, role: "web" | "worker" | "cli") {
  const r = loadSettings(env, role);
  return r.ok ? [] : r.problems;
}

describe("service settings", () => {
  it("lets a development web process start without app credentials (Probot's setup flow)", () => {
    const r = loadSettings({}, "web");
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.settings.REDIS_URL).toBe("redis://127.0.0.1:6379");
      expect(r.settings.githubApiUrl).toBe("https://api.github.com");
      expect(r.settings.pools).toContain("n150");
    }
  });

  it("reports every production problem at once, one line each", () => {
    const p = problems({ NODE_ENV: "production" }, "web");
    expect(p).toEqual([
      expect.stringMatching(/^APP_ID: missing/),
      expect.stringMatching(/^PRIVATE_KEY: missing/),
      expect.stringMatching(/^WEBHOOK_SECRET: missing/),
    ]);
  });

  it("refuses Probot's default webhook secret in production", () => {
    const p = problems(
      { NODE_ENV: "production", APP_ID: "1", PRIVATE_KEY: KEY, WEBHOOK_SECRET: "development" },
      "web",
    );
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/WEBHOOK_SECRET: still Probot's default "development"/);
  });

  it("accepts a complete production configuration, and a base64 key", () => {
    const env = {
      NODE_ENV: "production",
      APP_ID: "1234",
      PRIVATE_KEY: Buffer.from(KEY).toString("base64"),
      WEBHOOK_SECRET: "a-long-random-webhook-secret",
    };
    const r = loadSettings(env, "web");
    expect(r.ok && r.settings.privateKey).toBe(KEY);
  });

  it("names unknown pools and a malformed REDIS_URL", () => {
    expect(problems({ AUTOFIX_POOLS: "n150,gpu,x1" }, "web")).toEqual([
      expect.stringMatching(/^AUTOFIX_POOLS: unknown pools gpu, x1 \(known: cpu, n150/),
    ]);
    expect(problems({ REDIS_URL: "localhost:6379" }, "web")).toEqual([
      "REDIS_URL: must start with redis:// or rediss://",
    ]);
  });

  it("requires credentials and an Anthropic key for a worker, and reads PRIVATE_KEY_PATH", () => {
    expect(problems({}, "worker")).toEqual([
      expect.stringMatching(/^APP_ID: missing/),
      expect.stringMatching(/^PRIVATE_KEY: missing/),
      expect.stringMatching(/^ANTHROPIC_API_KEY: missing/),
    ]);
    const dir = mkdtempSync(join(tmpdir(), "autofix-env-"));
    writeFileSync(join(dir, "app.pem"), KEY);
    const r = loadSettings(
      { APP_ID: "9", PRIVATE_KEY_PATH: join(dir, "app.pem"), ANTHROPIC_API_KEY: "sk-ant-x" },
      "worker",
    );
    expect(r.ok && r.settings.privateKey).toBe(KEY);
    expect(
      problems({ APP_ID: "9", PRIVATE_KEY_PATH: join(dir, "missing.pem"), ANTHROPIC_API_KEY: "k" }, "worker"),
    ).toEqual([expect.stringMatching(/^PRIVATE_KEY_PATH: cannot read .*missing\.pem \(ENOENT\)/)]);
  });

  it("derives API and web URLs for GitHub Enterprise Server", () => {
    const r = loadSettings({ GHE_HOST: "github.example.com" }, "cli");
    expect(r.ok && [r.settings.githubApiUrl, r.settings.githubWebUrl]).toEqual([
      "https://github.example.com/api/v3",
      "https://github.example.com",
    ]);
    expect(problems({ GHE_HOST: "https://github.example.com" }, "cli")[0]).toMatch(
      /GHE_HOST: must be a host name/,
    );
  });
});

describe("worker and CLI settings", () => {
  const WORKER_KEYS = [
    "AUTOFIX_DEVICE_DIR",
    "AUTOFIX_REPORT_DIR",
    "AUTOFIX_MODEL",
    "AUTOFIX_WORKER_POOLS",
    "AUTOFIX_RESET_COMMAND",
    "AUTOFIX_SHUTDOWN_DEADLINE_SECONDS",
    "AUTOFIX_JOB_TIMEOUT_MINUTES",
    "AUTOFIX_CPU_CONCURRENCY",
    "AUTOFIX_WORK_DIR",
  ] as const;
  const workerPart = (env: Record<string, string>) => {
    const r = loadSettings(env, "cli");
    if (!r.ok) throw new Error(r.problems.join("\n"));
    return Object.fromEntries(WORKER_KEYS.map((k) => [k, r.settings[k]]));
  };

  it("default as the README's worker table says", () => {
    expect(workerPart({})).toEqual({
      AUTOFIX_DEVICE_DIR: "/dev/tenstorrent",
      AUTOFIX_REPORT_DIR: undefined,
      AUTOFIX_MODEL: "claude-sonnet-5",
      AUTOFIX_WORKER_POOLS: [],
      AUTOFIX_RESET_COMMAND: undefined,
      AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: 60,
      AUTOFIX_JOB_TIMEOUT_MINUTES: 120,
      AUTOFIX_CPU_CONCURRENCY: 1,
      AUTOFIX_WORK_DIR: ".autofix",
    });
    expect(workerPart({}).AUTOFIX_DEVICE_DIR).toBe(DEFAULT_DEVICE_DIR);
  });

  it("reads each one; NAME= means the default for the numbers and no reset command", () => {
    expect(
      workerPart({
        AUTOFIX_DEVICE_DIR: "/srv/dev",
        AUTOFIX_REPORT_DIR: "/srv/reports",
        AUTOFIX_MODEL: "claude-opus-5",
        AUTOFIX_WORKER_POOLS: "n150, cpu",
        AUTOFIX_RESET_COMMAND: "tt-smi -r",
        AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: "90",
        AUTOFIX_JOB_TIMEOUT_MINUTES: "0.5",
        AUTOFIX_CPU_CONCURRENCY: "4",
        AUTOFIX_WORK_DIR: "/var/lib/autofix",
      }),
    ).toEqual({
      AUTOFIX_DEVICE_DIR: "/srv/dev",
      AUTOFIX_REPORT_DIR: "/srv/reports",
      AUTOFIX_MODEL: "claude-opus-5",
      AUTOFIX_WORKER_POOLS: ["n150", "cpu"],
      AUTOFIX_RESET_COMMAND: "tt-smi -r",
      AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: 90,
      AUTOFIX_JOB_TIMEOUT_MINUTES: 0.5,
      AUTOFIX_CPU_CONCURRENCY: 4,
      AUTOFIX_WORK_DIR: "/var/lib/autofix",
    });
    expect(
      workerPart({
        AUTOFIX_RESET_COMMAND: " ",
        AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: "",
        AUTOFIX_JOB_TIMEOUT_MINUTES: "",
        AUTOFIX_CPU_CONCURRENCY: "",
      }),
    ).toMatchObject({
      AUTOFIX_RESET_COMMAND: undefined,
      AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: 60,
      AUTOFIX_JOB_TIMEOUT_MINUTES: 120,
      AUTOFIX_CPU_CONCURRENCY: 1,
    });
  });

  it("names each malformed number on its own line", () => {
    expect(
      problems(
        {
          AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: "0",
          AUTOFIX_JOB_TIMEOUT_MINUTES: "two hours",
          AUTOFIX_CPU_CONCURRENCY: "-1",
          AUTOFIX_WORKER_POOLS: "n150,gpu",
        },
        "cli",
      ),
    ).toEqual([
      'AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: must be a positive number, got "0"',
      'AUTOFIX_JOB_TIMEOUT_MINUTES: must be a positive number, got "two hours"',
      'AUTOFIX_CPU_CONCURRENCY: must be a positive number, got "-1"',
      expect.stringMatching(/^AUTOFIX_WORKER_POOLS: unknown pool gpu \(known: cpu, n150/),
    ]);
  });

  it("reports every problem in one go: malformed values and what the role is missing", () => {
    const p = problems(
      { PORT: "web", APP_ID: "my-app", AUTOFIX_CPU_CONCURRENCY: "many", REDIS_SENTINELS: "s1:26379" },
      "worker",
    );
    expect(p).toEqual([
      "APP_ID: must be the numeric App ID from the app's settings page",
      'AUTOFIX_CPU_CONCURRENCY: must be a positive number, got "many"',
      expect.stringMatching(/^PORT: /),
      expect.stringMatching(/^PRIVATE_KEY: missing/),
      expect.stringMatching(/^ANTHROPIC_API_KEY: missing/),
      expect.stringMatching(/^REDIS_SENTINEL_NAME: missing/),
    ]);
  });

  it("a malformed value is said once, not again as a missing or inconsistent one", () => {
    expect(problems({ APP_ID: "x" }, "worker").filter((l) => l.startsWith("APP_ID"))).toEqual([
      "APP_ID: must be the numeric App ID from the app's settings page",
    ]);
    expect(
      problems({ REDIS_CLUSTER_NODES: "c1:7000", AUTOFIX_QUEUE_PREFIX: "" }, "web").filter((l) =>
        l.startsWith("AUTOFIX_QUEUE_PREFIX"),
      ),
    ).toHaveLength(1);
  });

  it("readSettings lists the problems and keeps the defaults in place of malformed values", () => {
    const read = readSettings({ AUTOFIX_CPU_CONCURRENCY: "0", AUTOFIX_DEVICE_DIR: "/srv/dev" }, "worker");
    expect(read.settings.AUTOFIX_CPU_CONCURRENCY).toBe(1);
    expect(read.settings.AUTOFIX_DEVICE_DIR).toBe("/srv/dev");
    expect(read.problems[0]).toBe('AUTOFIX_CPU_CONCURRENCY: must be a positive number, got "0"');
    expect(read.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^APP_ID: missing/)]));
  });
});
