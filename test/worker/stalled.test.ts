import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../src/sandbox/factory.js";
import type { JobContext } from "../../src/worker/types.js";
import { TEST_APP_ID, testPrivateKey } from "../helpers/fake-github.js";
import { TEST_REDIS_URL } from "../helpers/redis.js";
import { makeJob, TARGET, WorkerTestBed } from "./helpers/harness.js";
import { alive, until } from "./helpers/proc.js";

const ROOT = resolve(import.meta.dirname, "../..");
// Built once for the child process (type-checking is the typecheck script's job, so --noCheck).
const DIST = join(ROOT, "node_modules", ".cache", "autofix-worker-test-dist");

let bed: WorkerTestBed;
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
    {
      cwd: ROOT,
      stdio: "ignore",
    },
  );
}, 30_000);
afterEach(async () => {
  await bed?.teardown();
});

/** Start a child worker, give it a job, and SIGKILL it mid-command. Returns the job id. */
async function crashChildMidJob(sha: string) {
  const files = {
    READY_FILE: join(bed.workDir, "ready"),
    STARTED_FILE: join(bed.workDir, "started"),
    SLEEP_PID_FILE: join(bed.workDir, "sleep.pid"),
  };
  const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "worker-child.mjs")], {
    env: {
      ...process.env,
      ...files,
      AUTOFIX_DIST: DIST,
      REDIS_URL: TEST_REDIS_URL,
      PREFIX: bed.prefix,
      GH_URL: bed.gh.url,
      APP_ID: TEST_APP_ID,
      PRIVATE_KEY: testPrivateKey(),
      WORK_DIR: bed.workDir,
      REMOTE_BASE: bed.remote.base,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise((r) => child.once("exit", r));
  expect(await until(() => existsSync(files.READY_FILE), 10_000)).toBe(true);
  const { jobId } = await bed.queues.enqueue(makeJob(sha));
  expect(
    await until(
      () => existsSync(files.SLEEP_PID_FILE) && readFileSync(files.SLEEP_PID_FILE, "utf8") !== "",
      10_000,
    ),
  ).toBe(true);
  const orphan = Number(readFileSync(files.SLEEP_PID_FILE, "utf8"));
  const worktrees = readdirSync(join(bed.workDir, "workspaces"));
  expect(worktrees).toHaveLength(1);
  expect(await until(() => /Running/.test(bed.gh.latest(TARGET) ?? ""))).toBe(true);

  child.kill("SIGKILL");
  await exited;
  try {
    // The crashed worker's command is an orphan now; a real host's hygiene or reboot ends it.
    process.kill(orphan, "SIGKILL");
  } catch {}
  expect(await until(() => !alive(orphan))).toBe(true);
  return { jobId, worktree: worktrees[0]!, files };
}

const finals = (edits: string[]) => edits.filter((b) => /### Autofix · (✅|🟡|❌|⏹️|⌛)/.test(b));

/** Host processes whose command line holds `marker`. */
function hostProcsWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("a worker killed mid-job", () => {
  it("in the bubblewrap sandbox, nothing the job started outlives the worker's kill -9, setsid or not", async (ctx) => {
    if (!existsSync("/usr/bin/bwrap") && process.env.CI !== "true") ctx.skip("bubblewrap is not installed");
    bed = await new WorkerTestBed().setup();
    chmodSync(bed.workDir, 0o755);
    const sha = bed.remote.commit("a.txt", "x\n");
    const marker = `7${Math.floor(Math.random() * 1e6)}.`;
    const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "worker-child.mjs")], {
      env: {
        ...process.env,
        READY_FILE: join(bed.workDir, "ready"),
        STARTED_FILE: join(bed.workDir, "started"),
        SLEEP_PID_FILE: join(bed.workDir, "sleep.pid"),
        SLEEP_MARKER: marker,
        SANDBOX: "bwrap",
        AUTOFIX_DIST: DIST,
        REDIS_URL: TEST_REDIS_URL,
        PREFIX: bed.prefix,
        GH_URL: bed.gh.url,
        APP_ID: TEST_APP_ID,
        PRIVATE_KEY: testPrivateKey(),
        WORK_DIR: bed.workDir,
        REMOTE_BASE: bed.remote.base,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    const exited = new Promise((r) => child.once("exit", r));
    expect(await until(() => existsSync(join(bed.workDir, "ready")), 10_000)).toBe(true);
    await bed.queues.enqueue(makeJob(sha));
    // Both the daemon and the command run (inside the sandbox, seen from the host).
    expect(await until(() => hostProcsWith(`sleep ${marker}`).length >= 2, 10_000)).toBe(true);
    child.kill("SIGKILL");
    await exited;
    // What a restarted worker does first (the worker command calls it before taking jobs):
    // bwrap's --die-with-parent almost always took the sandbox already; this takes the rest.
    const made = await createSandbox({
      mode: "bwrap",
      poolImages: {},
      engine: {},
      uid: 65534,
      gid: 65534,
      networkRepos: [],
      deviceDir: join(bed.workDir, "no-devices"),
      setting: { name: "AUTOFIX_SANDBOX", none: "AUTOFIX_SANDBOX=none" },
    });
    if (!made.ok) throw new Error(made.problem);
    await made.sandbox.cleanupStale("restarted");
    expect(await until(() => hostProcsWith(`sleep ${marker}`).length === 0, 10_000)).toBe(true);
  }, 30_000);

  it("without a sandbox, the next start kills what the job started on the host, setsid or not", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const marker = `8${Math.floor(Math.random() * 1e6)}.`;
    const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "worker-child.mjs")], {
      env: {
        ...process.env,
        READY_FILE: join(bed.workDir, "ready"),
        STARTED_FILE: join(bed.workDir, "started"),
        SLEEP_PID_FILE: join(bed.workDir, "sleep.pid"),
        SLEEP_MARKER: marker,
        SANDBOX: "host",
        AUTOFIX_DIST: DIST,
        REDIS_URL: TEST_REDIS_URL,
        PREFIX: bed.prefix,
        GH_URL: bed.gh.url,
        APP_ID: TEST_APP_ID,
        PRIVATE_KEY: testPrivateKey(),
        WORK_DIR: bed.workDir,
        REMOTE_BASE: bed.remote.base,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    const exited = new Promise((r) => child.once("exit", r));
    expect(await until(() => existsSync(join(bed.workDir, "ready")), 10_000)).toBe(true);
    await bed.queues.enqueue(makeJob(sha));
    // The daemon (its own session) and the command both run on the host.
    expect(await until(() => hostProcsWith(marker).length >= 2, 10_000)).toBe(true);
    child.kill("SIGKILL");
    await exited;
    // Nothing took them with the worker: without the restart's cleanup they would run on.
    expect(hostProcsWith(marker)).toHaveLength(2);
    // What the restarted worker does first (the worker command calls it before taking jobs).
    const made = await createSandbox({
      mode: "none",
      poolImages: {},
      engine: {},
      uid: 65534,
      gid: 65534,
      networkRepos: [],
      deviceDir: join(bed.workDir, "no-devices"),
      setting: { name: "AUTOFIX_SANDBOX", none: "AUTOFIX_SANDBOX=none" },
    });
    if (!made.ok) throw new Error(made.problem);
    const removed = await made.sandbox.cleanupStale("restarted");
    expect(removed.length).toBeGreaterThanOrEqual(2);
    expect(await until(() => hostProcsWith(marker).length === 0, 10_000)).toBe(true);
    // This process and its own commands are not the stale ones.
    expect(alive(process.pid)).toBe(true);
  }, 30_000);

  it("its job is picked up by another worker and finishes once, with one final comment", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const crashed = await crashChildMidJob(sha);

    const runs: JobContext[] = [];
    await bed.start(
      async (ctx) => {
        runs.push(ctx);
        return { state: "succeeded", message: `recovered at ${ctx.job.target.headSha.slice(0, 7)}` };
      },
      { lockDuration: 1_000, stalledInterval: 500, maxStalledCount: 2 },
    );
    // Start-up removed the dead worker's worktree.
    expect(readdirSync(join(bed.workDir, "workspaces"))).not.toContain(crashed.worktree);

    const job = await bed.waitFor("cpu", crashed.jobId, ["completed", "failed"], 15_000);
    expect(job.returnvalue).toMatchObject({ state: "succeeded", message: `recovered at ${sha.slice(0, 7)}` });
    expect(runs).toHaveLength(1);
    expect(existsSync(crashed.files.STARTED_FILE)).toBe(false);

    // The final view is in the outbox when the job completes; its drainer delivers it.
    expect(await until(() => finals([...bed.gh.comments.values()][0]?.edits ?? []).length > 0)).toBe(true);
    const comments = [...bed.gh.comments.values()];
    expect(comments).toHaveLength(1);
    const done = finals(comments[0]!.edits);
    expect(done).toHaveLength(1);
    expect(done[0]).toMatch(/Succeeded/);
    expect(
      comments[0]!.edits.some((b) => /Resumed after the previous worker stopped responding/.test(b)),
    ).toBe(true);
  }, 30_000);

  it("a job that stalls more often than allowed ends failed, and its comment says so", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const crashed = await crashChildMidJob(sha);
    let runs = 0;
    await bed.start(
      async () => {
        runs++;
        return { state: "succeeded", message: "should not run" };
      },
      { lockDuration: 1_000, stalledInterval: 500, maxStalledCount: 0 },
    );
    const job = await bed.waitFor("cpu", crashed.jobId, ["completed", "failed"], 15_000);
    expect(job.failedReason).toMatch(/stalled/);
    expect(runs).toBe(0);
    expect(await until(() => /stopped responding too many times/.test(bed.gh.latest(TARGET) ?? ""))).toBe(
      true,
    );
    expect(finals([...bed.gh.comments.values()][0]!.edits)).toHaveLength(1);
  }, 30_000);
});
