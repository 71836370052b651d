import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { createWorkerCommand } from "../../src/cli/commands/worker.js";
import { runCli } from "../../src/cli/run.js";
import type { Settings } from "../../src/config/env.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

function io(cwd: string, env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env, cwd };
  return { value, out, err };
}

describe("autofix CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "autofix-cli-"));

  it("validate: exit 0 for a valid info.json and a summary of what will happen", async () => {
    writeFileSync(
      join(dir, "ok.json"),
      JSON.stringify({ deterministic: false, url: "", prompt: "hang", "raw-logs": "TT_THROW" }),
    );
    const t = io(dir);
    expect(await runCli(["validate", "ok.json"], t.value)).toBe(0);
    expect(t.out.join("\n")).toMatch(/non-deterministic \(stress test, 5\/5 gates\)/);
  });

  it("validate: exit 2 and every problem printed for an invalid info.json", async () => {
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ deterministic: "false", prompt: "" }));
    const t = io(dir);
    expect(await runCli(["validate", "bad.json"], t.value)).toBe(2);
    expect(t.err[0]).toBe("bad.json is invalid (3 problems):");
    expect(t.err).toHaveLength(4);
  });

  it("config check: warnings and exit 0 for unknown keys, exit 2 with the errors for a bad file", async () => {
    writeFileSync(join(dir, "good.yml"), "trigger_label: fix-me\nunknown_thing: 1\n");
    writeFileSync(join(dir, "bad.yml"), "failure_threshold: 0\n");
    const good = io(dir);
    expect(await runCli(["config", "check", "good.yml", "--print"], good.value)).toBe(0);
    // --print: stdout is the JSON alone; the warning and the verdict go to stderr.
    expect(good.err[0]).toBe("warning: unknown key `unknown_thing` (ignored)");
    expect(JSON.parse(good.out.join("\n"))).toMatchObject({ trigger_label: "fix-me" });
    const bad = io(dir);
    expect(await runCli(["config", "check", "bad.yml"], bad.value)).toBe(2);
    expect(bad.err.join("\n")).toMatch(/`failure_threshold`: Too small/);
  });

  it("config check without .github/autofix.yml: the defaults apply, exit 0; --print is JSON alone", async () => {
    const empty = mkdtempSync(join(tmpdir(), "autofix-cli-noconfig-"));
    const plain = io(empty);
    expect(await runCli(["config", "check"], plain.value)).toBe(0);
    expect(plain.out).toEqual([
      `${join(empty, ".github/autofix.yml")} does not exist: every setting has its default (a missing file is fine)`,
    ]);
    const printed = io(empty);
    expect(await runCli(["config", "check", "--print"], printed.value)).toBe(0);
    expect(JSON.parse(printed.out.join("\n"))).toBeTypeOf("object");
    expect(printed.err[0]).toMatch(/does not exist: every setting has its default/);
    // A file named on the command line must exist.
    const named = io(empty);
    expect(await runCli(["config", "check", "mine.yml"], named.value)).toBe(2);
    expect(named.err[0]).toBe(`cannot read ${join(empty, "mine.yml")}: no such file`);
  });

  it("unknown commands and missing arguments exit 2 with a pointer to help", async () => {
    const t = io(dir);
    expect(await runCli(["frobnicate"], t.value)).toBe(2);
    expect(t.err[0]).toMatch(/unknown command "frobnicate"/);
    expect(await runCli(["validate"], t.value)).toBe(2);
    expect(t.err[1]).toBe("autofix validate: missing the info.json to check");
    expect(t.err[2]).toMatch(/^usage: autofix validate/);
  });
});

describe("autofix worker settings", () => {
  const KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
  const host = () => {
    const dir = mkdtempSync(join(tmpdir(), "autofix-worker-cli-"));
    const devices = join(dir, "dev");
    mkdirSync(devices);
    // No tt-smi on PATH and an empty device folder: a cpu-only host.
    return {
      dir,
      devices,
      env: { PATH: "/nonexistent", AUTOFIX_DEVICE_DIR: devices, LOG_LEVEL: "silent" as const },
    };
  };

  it("the hardware check looks in AUTOFIX_DEVICE_DIR and serves AUTOFIX_WORKER_POOLS", async () => {
    const h = host();
    const t = io(h.dir, { ...h.env, AUTOFIX_WORKER_POOLS: "n150" });
    expect(await runCli(["worker"], t.value)).toBe(2);
    expect(t.out[0]).toBe(`hardware: 0 device nodes in ${h.devices}; tt-smi not on PATH`);
    expect(t.err.join("\n")).toMatch(/refusing to start:\n\s+- pool n150 needs 1 card/);
  });

  it("prints every settings problem in one go, after the hardware check", async () => {
    const h = host();
    const t = io(h.dir, {
      ...h.env,
      REDIS_URL: TEST_REDIS_URL,
      PORT: "web",
      AUTOFIX_JOB_TIMEOUT_MINUTES: "soon",
    });
    expect(await runCli(["worker", "--pool", "cpu"], t.value)).toBe(2);
    expect(t.err).toHaveLength(1);
    const lines = t.err[0]!.split("\n");
    expect(lines[0]).toBe("the worker cannot start:");
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}- AUTOFIX_JOB_TIMEOUT_MINUTES: must be a positive number, got "soon"$/),
      expect.stringMatching(/^ {2}- PORT: /),
      expect.stringMatching(/^ {2}- APP_ID: missing/),
      expect.stringMatching(/^ {2}- PRIVATE_KEY: missing/),
      expect.stringMatching(/^ {2}- ANTHROPIC_API_KEY: missing/),
    ]);
  });

  it("a Redis that does not answer, and a missing sandbox, are problems of the same list, exit 2", async () => {
    const dead = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const port = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(port));
      });
    });
    const h = host();
    const t = io(h.dir, {
      ...h.env,
      APP_ID: "7",
      PRIVATE_KEY: KEY,
      ANTHROPIC_API_KEY: "sk-ant-test",
      REDIS_URL: `redis://127.0.0.1:${dead}`,
      AUTOFIX_SANDBOX: "container",
    });
    expect(await runCli(["worker", "--pool", "cpu"], t.value)).toBe(2);
    const lines = t.err.join("\n").split("\n");
    expect(lines[0]).toBe("the worker cannot start:");
    expect(lines.slice(1)).toEqual([
      "  - AUTOFIX_SANDBOX=container needs an image (AUTOFIX_SANDBOX_IMAGE)",
      `  - REDIS_URL redis://127.0.0.1:${dead}: connection refused at 127.0.0.1:${dead}`,
    ]);
  });

  it("starts with the parsed settings: concurrency, deadline, and the settings the pipeline gets", async () => {
    const h = host();
    const prefix = uniquePrefix("worker-cli");
    let seen: Settings | undefined;
    const command = createWorkerCommand({
      loadRunner: async (settings) => {
        seen = settings;
        return async () => ({ state: "succeeded", message: "not run" });
      },
      stop: async () => "SIGTERM",
    });
    const t = io(h.dir, {
      ...h.env,
      APP_ID: "7",
      PRIVATE_KEY: KEY,
      ANTHROPIC_API_KEY: "sk-ant-test",
      REDIS_URL: TEST_REDIS_URL,
      AUTOFIX_QUEUE_PREFIX: prefix,
      AUTOFIX_WORK_DIR: join(h.dir, "work"),
      AUTOFIX_CPU_CONCURRENCY: "2",
      AUTOFIX_SHUTDOWN_DEADLINE_SECONDS: "7",
      AUTOFIX_JOB_TIMEOUT_MINUTES: "3",
      AUTOFIX_REPORT_DIR: join(h.dir, "reports"),
      AUTOFIX_RESET_COMMAND: "true",
      AUTOFIX_MODEL: "claude-opus-5",
    });
    try {
      expect(await runCli(["worker", "--pool", "cpu"], t.value, [command])).toBe(0);
    } finally {
      await dropPrefix(prefix);
    }
    expect(t.err).toEqual([]);
    expect(t.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^serving cpu \(x2\) as /),
        "SIGTERM: finishing running jobs (up to 7 s), then requeueing them; send it again to stop them now",
      ]),
    );
    expect(seen).toMatchObject({
      AUTOFIX_REPORT_DIR: join(h.dir, "reports"),
      AUTOFIX_MODEL: "claude-opus-5",
      AUTOFIX_JOB_TIMEOUT_MINUTES: 3,
      AUTOFIX_RESET_COMMAND: "true",
    });
  });
});
