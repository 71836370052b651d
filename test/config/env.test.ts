import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/env.js";

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
