import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

/**
 * `autofix worker` as systemd and compose run it: a real child process with its settings in
 * the environment, pointing at the real Redis. A stop signal ends it with code 0 (no SIGKILL
 * needed); a Redis that does not answer ends it with code 2 and the address, not a hang.
 */

const ROOT = resolve(import.meta.dirname, "../..");
// Built once for this file, under the repository so the built file finds package.json.
const DIST = join(ROOT, "node_modules", ".cache", "autofix-worker-signals-dist");
const MAIN = join(DIST, "src/cli/main.js");
const KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";

interface Spawned {
  child: ChildProcess;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout has a line matching `re`. */
  line(re: RegExp): Promise<void>;
}

function startWorker(env: NodeJS.ProcessEnv): Spawned {
  const dir = mkdtempSync(join(tmpdir(), "autofix-worker-sig-"));
  const devices = join(dir, "dev");
  mkdirSync(devices);
  const child = spawn(process.execPath, [MAIN, "worker", "--pool", "cpu"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      AUTOFIX_DEVICE_DIR: devices,
      APP_ID: "7",
      PRIVATE_KEY: KEY,
      ANTHROPIC_API_KEY: "sk-ant-test",
      AUTOFIX_WORK_DIR: join(dir, "work"),
      AUTOFIX_SANDBOX: "none",
      LOG_LEVEL: "warn",
      ...env,
    },
  });
  let text = "";
  const waiters: Array<{ re: RegExp; done: () => void }> = [];
  const onData = (d: Buffer) => {
    text += String(d);
    for (const w of [...waiters]) {
      if (w.re.test(text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done();
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on("exit", (code, signal) => done({ code, signal })),
  );
  return {
    child,
    out: () => text,
    exited,
    line: (re) =>
      new Promise<void>((done, fail) => {
        if (re.test(text)) return done();
        waiters.push({ re, done });
        exited.then(() => fail(new Error(`the worker exited before printing ${re}:\n${text}`)));
      }),
  };
}

describe("autofix worker as a child process", () => {
  const prefixes: string[] = [];
  const children: ChildProcess[] = [];

  beforeAll(() => {
    execFileSync(
      process.execPath,
      [
        join(ROOT, "node_modules/typescript/lib/tsc.js"),
        "-p",
        "tsconfig.build.json",
        "--outDir",
        DIST,
        "--noCheck",
      ],
      { cwd: ROOT, stdio: "ignore" },
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const p of prefixes) await dropPrefix(p);
  });

  it.each(["SIGTERM", "SIGINT"] as const)(
    "idle, it exits with code 0 after %s (systemd and compose need no SIGKILL)",
    async (signal) => {
      const prefix = uniquePrefix("worker-sig");
      prefixes.push(prefix);
      const w = startWorker({ REDIS_URL: TEST_REDIS_URL, AUTOFIX_QUEUE_PREFIX: prefix });
      children.push(w.child);
      await w.line(/serving cpu \(x1\) as /);
      w.child.kill(signal);
      const end = await w.exited;
      expect(end).toEqual({ code: 0, signal: null });
      expect(w.out()).toContain(`${signal}: finishing running jobs`);
    },
    10_000,
  );

  it("Redis unreachable at start-up: exit code 2 naming the address, not a silent hang", async () => {
    const dead = await new Promise<number>((done) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const port = (srv.address() as AddressInfo).port;
        srv.close(() => done(port));
      });
    });
    const w = startWorker({ REDIS_URL: `redis://127.0.0.1:${dead}` });
    children.push(w.child);
    const end = await w.exited;
    expect(end).toEqual({ code: 2, signal: null });
    expect(w.out()).toContain("the worker cannot start:");
    expect(w.out()).toContain(`connection refused at 127.0.0.1:${dead}`);
  }, 10_000);
});
