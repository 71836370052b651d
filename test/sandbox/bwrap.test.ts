import { spawn } from "node:child_process";
import { chmod, chown, mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bwrapAvailable, createBwrapExecutor } from "../../src/sandbox/bwrap.js";
import { runHostCommand } from "../../src/shared/process.js";
import { sandboxContract } from "./cases.js";
import {
  asRoot,
  backendBinary,
  buildSandboxDist,
  loopbackListener,
  marker,
  markerCount,
  markerGone,
  markerPids,
} from "./helpers.js";

const { skip } = await backendBinary("bwrap");
const CHILD = join(import.meta.dirname, "fixtures", "sandbox-child.mjs");

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

  it("bwrapAvailable starts a real sandbox, and says why not when it cannot", async () => {
    const ok = await bwrapAvailable();
    expect(ok.ok, ok.detail).toBe(true);
    expect(ok.detail).toMatch(/bubblewrap/);
    expect(await bwrapAvailable("/nonexistent/bwrap")).toEqual({
      ok: false,
      detail: "/nonexistent/bwrap not found on PATH",
    });
    // Installed but unable (as where user namespaces are off): answers --version, makes no sandbox.
    const fake = join(ctx().fx.root, "fake-bwrap");
    await writeFile(
      fake,
      '#!/bin/sh\n[ "$1" = --version ] && echo "bubblewrap 0.8.0" && exit 0\necho "bwrap: No permissions to create new namespace" >&2; exit 1\n',
      { mode: 0o755 },
    );
    const unable = await bwrapAvailable(fake);
    expect(unable.ok).toBe(false);
    expect(unable.detail).toMatch(/cannot make a sandbox here: bwrap: No permissions/);
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

    it.skipIf(!asRoot)(
      "a service that is not root runs bwrap as itself, with the same guarantees",
      async () => {
        const { fx, secret, token } = ctx();
        const ws = join(fx.root, "ws-of-4242");
        await mkdir(ws);
        await chown(ws, 4242, 4242);
        await chmod(dist, 0o755);
        const r = await runHostCommand(
          ["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", process.execPath, CHILD],
          {
            env: {
              ...process.env,
              AUTOFIX_SANDBOX_DIST: dist,
              SANDBOX_KIND: "bwrap",
              SANDBOX_PRINT: "1",
              SANDBOX_OPTIONS: JSON.stringify({
                workspace: ws,
                env: { TT_VISIBLE_DEVICES: "0" },
                cards: [],
                jobId: "nr",
              }),
              SANDBOX_COMMAND: `id -u; touch made-here; cat /proc/*/environ | tr '\\0' '\\n'; cat '${fx.envFile}' || echo DENIED`,
            },
            timeoutMs: 30_000,
          },
        );
        expect(r.exitCode, r.stderr).toBe(0);
        const inner = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
        expect(inner.stdout.split("\n")[0]).toBe("65534");
        expect(inner.stdout).toContain("TT_VISIBLE_DEVICES=0");
        expect(inner.stdout).toContain("DENIED");
        expect(inner.output).not.toContain(secret);
        expect(inner.output).not.toContain(token);
        // Outside its user namespace the sandbox is the service's own uid.
        expect((await stat(join(ws, "made-here"))).uid).toBe(4242);
      },
    );

    it("nothing of its sandbox survives", async () => {
      const { fx } = ctx();
      const m = marker();
      const child = spawn(process.execPath, [CHILD], {
        env: {
          ...process.env,
          AUTOFIX_SANDBOX_DIST: dist,
          SANDBOX_KIND: "bwrap",
          SANDBOX_OPTIONS: JSON.stringify({
            workspace: fx.workspace,
            env: {},
            cards: [],
            jobId: "crash",
          }),
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
