import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBwrapExecutor } from "../../src/sandbox/bwrap.js";
import { sandboxContract } from "./cases.js";
import {
  backendBinary,
  buildSandboxDist,
  loopbackListener,
  marker,
  markerCount,
  markerGone,
  markerPids,
} from "./helpers.js";

const { skip } = await backendBinary("bwrap");

const ctx = sandboxContract("bwrap", skip, (spec) => createBwrapExecutor(spec));

describe.skipIf(skip)("bwrap: its own guarantees", () => {
  it("is kind bwrap, and what a command leaves running dies with it, setsid or not", async () => {
    const exec = ctx().make();
    expect(exec.kind).toBe("bwrap");
    const m = marker();
    const r = await exec.run(
      `setsid sleep ${m} >/dev/null 2>&1 </dev/null & nohup sleep ${m} >/dev/null 2>&1 </dev/null & ` +
        `(sleep ${m} >/dev/null 2>&1 </dev/null &); echo started`,
    );
    expect(r.stdout.trim()).toBe("started");
    // Each command is its own PID namespace: its end takes every process in it along, no killAll needed.
    expect(await markerPids(m)).toEqual([]);
  });

  it("a command that ignores SIGTERM is still killed after the grace", async () => {
    const exec = ctx().make({ killGraceMs: 300 });
    const m = marker();
    const ac = new AbortController();
    const p = exec.run(`trap '' TERM; sleep ${m} & wait; wait`, { signal: ac.signal });
    expect(await markerCount(m, 1)).toBe(true);
    ac.abort();
    const r = await p;
    expect(r.cancelled).toBe(true);
    expect(await markerPids(m)).toEqual([]);
  });

  it("a SIGTERM reaches the command before the sandbox is killed", async () => {
    const exec = ctx().make({ killGraceMs: 10_000 });
    const m = marker();
    const ac = new AbortController();
    const p = exec.run(`trap 'echo got-term; exit 3' TERM; sleep ${m} & wait`, { signal: ac.signal });
    expect(await markerCount(m, 1)).toBe(true);
    ac.abort();
    const r = await p;
    expect(r.stdout).toContain("got-term");
    expect(r.exitCode).toBe(3);
  });

  it("shows a minimal /etc and a read-only system", async () => {
    const exec = ctx().make();
    const r = await exec.run(
      "ls /etc; echo ---; grep sandbox /etc/passwd; echo ---; hostname; touch /usr/bin/x 2>/dev/null || echo RO",
    );
    const etc = r.stdout.split("---")[0]!.trim().split("\n");
    expect(etc).toContain("passwd");
    expect(etc).toContain("ld.so.cache");
    for (const absent of ["shadow", "gitconfig", "environment", "resolv.conf", "sudoers"]) {
      expect(etc).not.toContain(absent);
    }
    expect(r.stdout).toContain("sandbox:x:65534:65534");
    expect(r.stdout).toContain("autofix-sandbox");
    expect(r.stdout.trim().endsWith("RO")).toBe(true);
  });

  it("network: true shares the host's network, loopback included", async () => {
    const l = await loopbackListener();
    try {
      const exec = ctx().make({ network: true });
      const r = await exec.run(`(exec 3<>/dev/tcp/127.0.0.1/${l.port}) && echo CONNECTED || echo REFUSED`);
      expect(r.stdout.trim()).toBe("CONNECTED");
    } finally {
      await l.close();
    }
  });

  describe("when the worker is SIGKILLed", () => {
    let dist = "";
    let remove = async () => {};
    beforeAll(async () => {
      ({ dir: dist, remove } = await buildSandboxDist());
    }, 120_000);
    afterAll(() => remove());

    it("nothing of its sandbox survives", async () => {
      const { fx } = ctx();
      const m = marker();
      const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "sandbox-child.mjs")], {
        env: {
          ...process.env,
          AUTOFIX_SANDBOX_DIST: dist,
          SANDBOX_KIND: "bwrap",
          SANDBOX_OPTIONS: JSON.stringify({ workspace: fx.workspace, env: {}, cards: [], jobId: "crash" }),
          SANDBOX_COMMAND: `setsid sleep ${m} >/dev/null 2>&1 </dev/null & nohup sleep ${m} >/dev/null 2>&1 & sleep ${m}`,
        },
        stdio: "ignore",
      });
      const exited = new Promise((r) => child.once("exit", r));
      expect(await markerCount(m, 3)).toBe(true);
      child.kill("SIGKILL");
      await exited;
      expect(await markerGone(m)).toBe(true);
    });
  });
});
