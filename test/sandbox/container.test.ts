import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ContainerEngineOptions,
  createContainerExecutor,
  ENGINE_DEFAULTS,
  engineCommand,
  inContainerPath,
  removeStaleContainers,
} from "../../src/sandbox/container.js";
import { buildHostImage, removeHostImage } from "../../src/sandbox/host-image.js";
import { runHostCommand } from "../../src/shared/process.js";
import { sandboxContract } from "./cases.js";
import {
  backendBinary,
  buildSandboxDist,
  marker,
  markerCount,
  markerGone,
  markerPids,
  until,
} from "./helpers.js";

const { skip } = await backendBinary("podman");

const engine: ContainerEngineOptions = { binary: "podman" };
const tag = `localhost/autofix-sandbox-test:${randomBytes(4).toString("hex")}`;
const worker = `sandbox-test-${randomBytes(3).toString("hex")}`;

/** An engine call from the test, as the service makes them. */
async function engine$(args: string[]) {
  const { argv, env } = engineCommand(engine, args);
  return runHostCommand(argv, { env, timeoutMs: 120_000 });
}
async function containersLabelled(label: string): Promise<string[]> {
  const r = await engine$(["ps", "-a", "--filter", `label=${label}`, "--format", "{{.Names}}"]);
  return r.stdout.split(/\s+/).filter(Boolean);
}

beforeAll(async () => {
  if (skip) return;
  // No registry here: an image of this host's own tools, imported once for the file.
  await buildHostImage({
    engine,
    tag,
    binaries: [
      "bash",
      "sh",
      "cat",
      "id",
      "env",
      "ls",
      "sleep",
      "touch",
      "echo",
      "true",
      "tr",
      "grep",
      "wc",
      "setsid",
      "nohup",
      "mkdir",
      "rm",
      "hostname",
      "git",
    ],
    folders: ["/usr/lib/git-core", "/usr/share/git-core"],
  });
}, 300_000);
afterAll(async () => {
  if (skip) return;
  for (const name of await containersLabelled(`autofix.worker=${worker}`))
    await engine$(["rm", "-f", "-t", "0", name]);
  await removeHostImage(engine, tag);
}, 120_000);

const ctx = sandboxContract("container (podman)", skip, (spec) =>
  createContainerExecutor({ image: tag, engine, workerName: worker, ...spec }),
);

describe.skipIf(skip)("container (podman): its own guarantees", () => {
  it("one container per job, labelled; killAll gives a fresh one (tmp emptied, workspace kept); dispose removes it", async () => {
    const exec = ctx().make({ jobId: "job-42-1" });
    expect(exec.kind).toBe("container");
    await exec.run("echo kept > kept.txt; echo gone > /tmp/scratch");
    const first = await containersLabelled("autofix.job=job-42-1");
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/^autofix-job-42-1-/);
    expect((await exec.run("cat /tmp/scratch")).stdout).toBe("gone\n");
    await exec.killAll();
    expect(await containersLabelled("autofix.job=job-42-1")).toEqual([]);
    const r = await exec.run("cat kept.txt; cat /tmp/scratch 2>/dev/null || echo no-scratch");
    expect(r.stdout).toBe("kept\nno-scratch\n");
    const second = await containersLabelled("autofix.job=job-42-1");
    expect(second).toHaveLength(1);
    expect(second[0]).not.toBe(first[0]);
    await exec.dispose();
    expect(await containersLabelled("autofix.job=job-42-1")).toEqual([]);
  });

  it("runs with no capabilities, no new privileges and a read-only root", async () => {
    const exec = ctx().make();
    const r = await exec.run(
      "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; touch /usr/x 2>/dev/null || echo RO; git --version",
    );
    expect(r.stdout).toMatch(/CapEff:\s+0{16}/);
    expect(r.stdout).toMatch(/CapBnd:\s+0{16}/);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.stdout).toContain("RO");
    expect(r.stdout).toMatch(/git version/);
  });

  it("a command's own background processes live until killAll (the exec client cannot take them)", async () => {
    const exec = ctx().make();
    const m = marker();
    await exec.run(`sleep ${m} >/dev/null 2>&1 </dev/null & echo started`);
    expect(await markerPids(m)).toHaveLength(1);
    await exec.killAll();
    expect(await markerGone(m)).toBe(true);
  });

  it("removeStaleContainers removes a dead worker's and a previous same-name worker's containers, not a live one's", async () => {
    const host = hostname();
    const make = async (name: string, labels: Record<string, string>) => {
      const l = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
      const r = await engine$([
        "run",
        "-d",
        "--name",
        name,
        ...l,
        "--network",
        "none",
        ...ENGINE_DEFAULTS.podman.runArgs,
        "--entrypoint",
        "sleep",
        tag,
        "1000",
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
    };
    const id = randomBytes(3).toString("hex");
    const me = `stale-test-${id}`;
    const dead = 2 ** 22 + 12345; // above pid_max's default: no such process
    await make(`stale-same-name-${id}`, {
      "autofix.worker": me,
      "autofix.host": host,
      "autofix.pid": String(process.ppid),
    });
    await make(`stale-dead-${id}`, {
      "autofix.worker": `other-${id}`,
      "autofix.host": host,
      "autofix.pid": String(dead),
    });
    await make(`live-other-${id}`, {
      "autofix.worker": `other-${id}`,
      "autofix.host": host,
      "autofix.pid": String(process.ppid),
    });
    try {
      const removed = await removeStaleContainers(engine, me);
      expect(removed.sort()).toEqual([`stale-dead-${id}`, `stale-same-name-${id}`]);
      expect(await containersLabelled(`autofix.worker=other-${id}`)).toEqual([`live-other-${id}`]);
      // This process's own containers are never stale.
      const exec = ctx().make({ jobId: `own-${id}` });
      await exec.run("true");
      await removeStaleContainers(engine, worker);
      expect(await containersLabelled(`autofix.job=own-${id}`)).toHaveLength(1);
    } finally {
      await engine$(["rm", "-f", "-t", "0", `live-other-${id}`, `stale-dead-${id}`, `stale-same-name-${id}`]);
    }
  });

  it("a container removed from outside is replaced at the next command", async () => {
    const exec = ctx().make({ jobId: "removed-outside" });
    await exec.run("true");
    const [name] = await containersLabelled("autofix.job=removed-outside");
    await engine$(["rm", "-f", "-t", "0", name!]);
    const failed = await exec.run("echo hi");
    expect(failed.exitCode).toBeGreaterThanOrEqual(125);
    const r = await exec.run("echo hi");
    expect(r.stdout).toBe("hi\n");
    expect(await containersLabelled("autofix.job=removed-outside")).toHaveLength(1);
  });

  it("refuses a bind path the engine would misparse", async () => {
    const exec = ctx().make({ readOnlyBinds: ["/tmp/a,b"] });
    await expect(exec.run("true")).rejects.toThrow(/cannot bind/);
  });

  describe("when the worker is SIGKILLed", () => {
    let dist = "";
    let remove = async () => {};
    beforeAll(async () => {
      ({ dir: dist, remove } = await buildSandboxDist());
    }, 120_000);
    afterAll(() => remove());

    it("its watchdog removes the job's container, and everything in it", async () => {
      const { fx } = ctx();
      const m = marker();
      const jobId = `crash-${randomBytes(3).toString("hex")}`;
      const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "sandbox-child.mjs")], {
        env: {
          ...process.env,
          AUTOFIX_SANDBOX_DIST: dist,
          SANDBOX_KIND: "container",
          SANDBOX_OPTIONS: JSON.stringify({
            workspace: fx.workspace,
            env: {},
            cards: [],
            jobId,
            image: tag,
            engine,
            workerName: worker,
          }),
          SANDBOX_COMMAND: `setsid sleep ${m} >/dev/null 2>&1 </dev/null & sleep ${m}`,
        },
        stdio: "ignore",
      });
      const exited = new Promise((r) => child.once("exit", r));
      expect(await markerCount(m, 2, 30_000)).toBe(true);
      expect(await containersLabelled(`autofix.job=${jobId}`)).toHaveLength(1);
      child.kill("SIGKILL");
      await exited;
      expect(await markerGone(m, 30_000)).toBe(true);
      expect(
        await until(async () => (await containersLabelled(`autofix.job=${jobId}`)).length === 0, 30_000, 100),
      ).toBe(true);
    }, 90_000);
  });
});

describe("inContainerPath (the compiler cache's base folder inside the container)", () => {
  it("maps the workspace and paths below it to the mount path, and leaves other paths alone", () => {
    expect(inContainerPath("/srv/ws/123-job", "/srv/ws/123-job", "/work")).toBe("/work");
    expect(inContainerPath("/srv/ws/123-job/build", "/srv/ws/123-job", "/work")).toBe("/work/build");
    expect(inContainerPath("/srv/ws/123-jobx", "/srv/ws/123-job", "/work")).toBe("/srv/ws/123-jobx");
    expect(inContainerPath("/srv/cache", "/srv/ws/123-job", "/work")).toBe("/srv/cache");
  });
});
