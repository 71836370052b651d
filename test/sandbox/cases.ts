import { chmod, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SandboxError } from "../../src/sandbox/common.js";
import { ExecutorDisposedError, type ExecutorSpec, type JobExecutor } from "../../src/sandbox/executor.js";
import {
  asRoot,
  expectedUid,
  type Fixture,
  hostAddress,
  loopbackListener,
  makeFixture,
  marker,
  markerCount,
  markerGone,
  markerPids,
  plantSecrets,
  SANDBOX_UID,
} from "./helpers.js";

/** Options on top of the spec; each backend reads the ones it knows. */
export type Extra = Partial<ExecutorSpec> & Record<string, unknown>;

export interface CaseContext {
  fx: Fixture;
  secret: string;
  token: string;
  /** A fresh executor on the fixture's workspace, disposed of after the test. */
  make: (extra?: Extra) => JobExecutor;
}

/**
 * What every sandbox backend guarantees, asserted as a user or an attacker would notice it.
 * `create` makes the backend's executor; the suite owns the fixture, the planted secrets and
 * the executors' disposal. Returns the context for the backend's own tests.
 */
export function sandboxContract(
  name: string,
  skip: string | false,
  create: (spec: ExecutorSpec & Extra) => JobExecutor,
): () => CaseContext {
  let ctx: CaseContext | undefined;
  const made: JobExecutor[] = [];
  let restore = () => {};

  beforeAll(async () => {
    if (skip) return;
    const s = plantSecrets();
    restore = s.restore;
    const fx = await makeFixture(s.secret);
    ctx = {
      fx,
      secret: s.secret,
      token: s.token,
      make: (extra = {}) => {
        const e = create({
          workspace: fx.workspace,
          env: { TT_VISIBLE_DEVICES: "0" },
          cards: [],
          jobId: `test-${Math.random().toString(36).slice(2, 8)}`,
          ...extra,
        });
        made.push(e);
        return e;
      },
    };
  }, 60_000);
  afterEach(async () => {
    await Promise.all(made.splice(0).map((e) => e.dispose().catch(() => {})));
  }, 60_000);
  afterAll(async () => {
    restore();
    await ctx?.fx.cleanup();
  });
  const get = () => ctx!;

  describe.skipIf(skip)(`${name}: the sandbox contract`, () => {
    it("a command sees the job's variables and none of the service's, in no process of the sandbox", async () => {
      const { make, secret, token } = get();
      const exec = make();
      const r = await exec.run(
        "env; echo ---PROC1; cat /proc/1/environ | tr '\\0' '\\n'; echo ---ALL; cat /proc/[0-9]*/environ | tr '\\0' '\\n';" +
          " echo ---PS; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done",
        { env: { PER_COMMAND: "yes", GH_TOKEN: "given-by-a-caller", AUTOFIX_TEST_SECRET: "also" } },
      );
      expect(r.exitCode).toBe(0);
      const [env, , rest = ""] = r.stdout.split(/---PROC1\n/);
      expect(env).toMatch(/^TT_VISIBLE_DEVICES=0$/m);
      expect(env).toMatch(/^PER_COMMAND=yes$/m);
      expect(env).toMatch(/^HOME=\/home\/sandbox$/m);
      expect(env).toMatch(/^TERM=dumb$/m);
      for (const bad of [
        secret,
        token,
        "given-by-a-caller",
        "AUTOFIX_TEST_SECRET",
        "GH_TOKEN",
        "REDIS_URL",
      ]) {
        expect(r.output).not.toContain(bad);
      }
      expect(r.stdout).toContain("---ALL");
      // The sandbox's own processes only: no node, no vitest, no service.
      const ps = (r.stdout.split("---PS\n")[1] ?? rest).trim().split("\n");
      expect(ps.length).toBeGreaterThan(0);
      expect(ps.length).toBeLessThan(12);
      for (const line of ps) expect(line).not.toMatch(/node|vitest/);
    });

    it("nothing outside the workspace is readable: the service's .env and key, another job's workspace", async () => {
      const { make, fx, secret } = get();
      const exec = make();
      const targets = [
        fx.envFile,
        fx.keyFile,
        join(fx.otherWorkspace, "theirs.txt"),
        `/proc/${process.pid}/environ`,
      ];
      const script = [
        ...targets.map((t, i) => `cat '${t}' 2>/dev/null && echo READ:${i} || echo DENIED:${i}`),
        `ls '${fx.otherWorkspace}' 2>/dev/null && echo LISTED || echo NOLIST`,
        `ls '${fx.root}' 2>/dev/null | grep -q other-ws && echo SIBLINGS || echo NOSIBLINGS`,
        'ls -A "$HOME" | wc -l',
      ].join("\n");
      const r = await exec.run(script);
      expect(r.output).not.toContain(secret);
      for (let i = 0; i < targets.length; i++) expect(r.stdout).toContain(`DENIED:${i}`);
      expect(r.stdout).toContain("NOLIST");
      expect(r.stdout).toContain("NOSIBLINGS");
      expect(r.stdout.trim().split("\n").at(-1)).toBe("0");
      // The service's HOME (credentials, caches) is not there: what the host has in it, the sandbox does not see.
      const home = homedir();
      const hostEntries = (await readdir(home).catch(() => [] as string[])).filter((n) => n.length > 2);
      const seen = await exec.run(`ls -A '${home}' 2>/dev/null`);
      for (const name of hostEntries) expect(seen.stdout.split("\n")).not.toContain(name);
      // The workspace itself is there.
      expect((await exec.run(["cat", "README"])).stdout).toBe("the job's own file\n");
    });

    it("only the workspace, /tmp and HOME are writable", async () => {
      const { make, fx } = get();
      const exec = make();
      const outside = [
        "/usr/x",
        "/etc/x",
        "/x",
        join(fx.root, "x"),
        join(fx.otherWorkspace, "x"),
        join(fx.secretsDir, "x"),
      ];
      const r = await exec.run(
        [
          "touch new-file && echo WS-OK",
          "touch /tmp/t && echo TMP-OK",
          'touch "$HOME/h" && echo HOME-OK',
          ...outside.map((p) => `touch '${p}' 2>/dev/null && echo WROTE:${p}`),
          "true",
        ].join("\n"),
      );
      expect(r.stdout).toContain("WS-OK");
      expect(r.stdout).toContain("TMP-OK");
      expect(r.stdout).toContain("HOME-OK");
      // Folders below /tmp on the host are below the sandbox's own tmpfs /tmp inside: a write
      // there lands in the throwaway tmpfs. What counts is that no host path changed.
      for (const p of outside) if (!p.startsWith("/tmp/")) expect(r.stdout).not.toContain(`WROTE:${p}`);
      const st = await stat(join(fx.workspace, "new-file"));
      if (asRoot) expect(st.uid).toBe(SANDBOX_UID);
      for (const p of outside) await expect(stat(p)).rejects.toThrow();
    });

    it("runs as the sandbox uid", async () => {
      const exec = get().make();
      const r = await exec.run("id -u; id -g");
      expect(r.stdout).toBe(`${expectedUid}\n${expectedUid}\n`);
    });

    it("cannot reach a listener on the host's loopback, or on its other addresses, without network", async () => {
      const l = await loopbackListener("0.0.0.0");
      try {
        const exec = get().make();
        const addresses = ["127.0.0.1", ...(hostAddress() ? [hostAddress()!] : [])];
        const r = await exec.run(
          addresses
            .map(
              (a) =>
                `(exec 3<>/dev/tcp/${a}/${l.port}) 2>/dev/null && echo CONNECTED:${a} || echo REFUSED:${a}`,
            )
            .join("\n"),
        );
        expect(r.stdout.trim().split("\n")).toEqual(addresses.map((a) => `REFUSED:${a}`));
        expect(l.connections()).toBe(0);
      } finally {
        await l.close();
      }
    });

    it("daemons (setsid, nohup, double fork) do not survive killAll", async () => {
      const exec = get().make();
      const m = marker();
      const r = await exec.run(
        `setsid sleep ${m} >/dev/null 2>&1 </dev/null & nohup sleep ${m} >/dev/null 2>&1 </dev/null & ` +
          `(sleep ${m} >/dev/null 2>&1 </dev/null &); echo started`,
      );
      expect(r.stdout.trim()).toBe("started");
      await exec.killAll();
      expect(await markerGone(m)).toBe(true);
    });

    it("a timeout kills the command's whole tree", async () => {
      const exec = get().make();
      const m = marker();
      const p = exec.run(`setsid sleep ${m} >/dev/null 2>&1 </dev/null & sleep ${m}`, { timeoutMs: 5000 });
      const seen = await markerCount(m, 2, 5000);
      const r = await p;
      expect(seen).toBe(true);
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).not.toBe(0);
      expect(await markerGone(m)).toBe(true);
    });

    it("cancelling through the AbortSignal kills the whole tree", async () => {
      const exec = get().make();
      const m = marker();
      const ac = new AbortController();
      const p = exec.run(`setsid sleep ${m} >/dev/null 2>&1 </dev/null & sleep ${m}`, { signal: ac.signal });
      expect(await markerCount(m, 2)).toBe(true);
      ac.abort();
      const r = await p;
      expect(r.cancelled).toBe(true);
      expect(await markerGone(m)).toBe(true);
      // An aborted signal runs nothing.
      const again = await exec.run(`sleep ${m}`, { signal: ac.signal });
      expect(again.cancelled).toBe(true);
      expect(await markerPids(m)).toEqual([]);
    });

    it("killAll ends a running command", async () => {
      const exec = get().make();
      const m = marker();
      const p = exec.run(`sleep ${m}`);
      expect(await markerCount(m, 1)).toBe(true);
      await exec.killAll();
      const r = await p;
      expect(r.exitCode).not.toBe(0);
      expect(await markerGone(m)).toBe(true);
      // The executor still works afterwards.
      expect((await exec.run("echo again")).stdout).toBe("again\n");
    });

    it("killAll cancels a command that was asked for but not started yet", async () => {
      const exec = get().make();
      const m = marker();
      const p = exec.run(`sleep ${m}`);
      await exec.killAll();
      const r = await p;
      expect(r.cancelled).toBe(true);
      expect(await markerPids(m)).toEqual([]);
      expect((await exec.run("echo after")).stdout).toBe("after\n");
    });

    it("constant variables of the backend's options sit below the job's", async () => {
      const exec = get().make({ extraEnv: { FROM_OPTIONS: "1", TT_VISIBLE_DEVICES: "overridden" } });
      const r = await exec.run('echo "$FROM_OPTIONS $TT_VISIBLE_DEVICES"');
      expect(r.stdout).toBe("1 0\n");
    });

    it("dispose kills everything and refuses later runs", async () => {
      const exec = get().make();
      const m = marker();
      const p = exec.run(`sleep ${m}`);
      expect(await markerCount(m, 1)).toBe(true);
      await exec.dispose();
      await p;
      expect(await markerGone(m)).toBe(true);
      await expect(exec.run("true")).rejects.toBeInstanceOf(ExecutorDisposedError);
      await exec.dispose();
    });

    it("maps cwd below the workspace, passes exit codes and stdin, refuses a cwd outside", async () => {
      const { make, fx } = get();
      const exec = make();
      const r = await exec.run("pwd; exit 7", { cwd: join(fx.workspace, "sub") });
      expect(r.stdout).toBe(`${join(fx.workspace, "sub")}\n`);
      expect(r.exitCode).toBe(7);
      expect((await exec.run(["cat"], { input: "from stdin" })).stdout).toBe("from stdin");
      await expect(exec.run("pwd", { cwd: fx.otherWorkspace })).rejects.toBeInstanceOf(SandboxError);
    });

    it("can mount the workspace at another path", async () => {
      const { make, fx } = get();
      const exec = make({ mountPath: "/work" });
      const r = await exec.run("pwd; cat /work/README", { cwd: join(fx.workspace, "sub") });
      expect(r.stdout).toBe("/work/sub\nthe job's own file\n");
    });

    it("binds extra folders read-only", async () => {
      const { make } = get();
      const dir = await mkdtemp(join(tmpdir(), "autofix-sandbox-ro-"));
      try {
        await writeFile(join(dir, "objects"), "pack\n", { mode: 0o644 });
        await chmod(dir, 0o755);
        const exec = make({ readOnlyBinds: [dir] });
        const r = await exec.run(
          `cat '${dir}/objects'; touch '${dir}/new' 2>/dev/null && echo WROTE || echo RO`,
        );
        expect(r.stdout).toBe("pack\nRO\n");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it.skipIf(!asRoot)("shows only the job's card device nodes", async () => {
      const { make, fx } = get();
      const exec = make({ cards: ["0"], deviceDir: fx.deviceDir });
      const r = await exec.run("ls /dev/tenstorrent; echo x > /dev/tenstorrent/0 && echo WROTE");
      expect(r.stdout).toBe("0\nWROTE\n");
      await expect(make({ cards: ["../sda"], deviceDir: fx.deviceDir }).run("true")).rejects.toThrow(
        /unsafe card/,
      );
    });
  });

  return get;
}
