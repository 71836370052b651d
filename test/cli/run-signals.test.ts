import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { interruptExitCode } from "../../src/cli/commands/run.js";
import { makeRepo, sh, type TestRepo } from "../agent/repo.js";
import { ADD_BUGGY } from "../helpers/add-bug.js";
import { calls, type FakeAnthropic, startFakeAnthropic, tool } from "../helpers/fake-anthropic.js";

/**
 * `autofix run` stopped by SIGTERM (a CI runner cancelling, `timeout`, a service manager), as a
 * real process: it stops as the first Ctrl-C does (the report is written, the temporary
 * repository and folder are removed, exit 1 for a cancelled run); a second signal quits at
 * once with 128 + its number.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
// Built once for this file, under the repository so the built file finds package.json.
const DIST = path.join(ROOT, "node_modules", ".cache", "autofix-run-signals-dist");
const MAIN = path.join(DIST, "src/cli/main.js");

let fake: FakeAnthropic | undefined;
let repo: TestRepo | undefined;
let child: ChildProcess | undefined;
const dirs: string[] = [];

beforeAll(() => {
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, "node_modules/typescript/lib/tsc.js"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      DIST,
      "--noCheck",
    ],
    { cwd: ROOT, stdio: "ignore" },
  );
}, 120_000);

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await fake?.close();
  await repo?.cleanup();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  fake = repo = child = undefined;
});

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `autofix-run-sig-${name}-`));
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}

/** Start `autofix run` with the model call hanging, and wait until that call is in flight. */
async function startRun() {
  repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
  // The model's answer would come long after the test's timeout: only a signal ends the run.
  fake = await startFakeAnthropic([{ ...calls(tool("list_files", {})), delayMs: 600_000 }]);
  const cwd = await tempDir("cwd");
  const tmp = await tempDir("tmp");
  await writeFile(
    path.join(cwd, "info.json"),
    JSON.stringify({
      deterministic: true,
      url: "",
      prompt: "add.sh returns the wrong sum",
      "raw-logs": "expected 5, got -1",
      "existing-test-path": "",
    }),
  );
  const proc = spawn(process.execPath, [MAIN, "run", "--repo", repo.dir, "--sandbox", "none"], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: tmp,
      ANTHROPIC_API_KEY: "test-key",
      ANTHROPIC_BASE_URL: fake.url,
    },
  });
  child = proc;
  let text = "";
  proc.stdout!.on("data", (d) => {
    text += String(d);
  });
  proc.stderr!.on("data", (d) => {
    text += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    proc.on("exit", (code, signal) => done({ code, signal })),
  );
  await expect.poll(() => fake!.requests.length, { timeout: 15_000 }).toBe(1);
  return { proc, exited, text: () => text, tmp, cwd };
}

describe("autofix run and SIGTERM, as a process", () => {
  it("SIGTERM stops the run as Ctrl-C does: report written, temporary folder and worktree gone, exit 1", async () => {
    const r = await startRun();
    r.proc.kill("SIGTERM");
    const end = await r.exited;
    expect(end, r.text()).toEqual({ code: 1, signal: null });
    expect(r.text()).toMatch(/interrupted \(SIGTERM\): stopping the run/);
    expect(r.text()).toContain("Status: Cancelled (exit 1)");
    // The pending model call was cut off, not answered.
    await expect.poll(() => fake!.aborted).toBe(1);
    // Nothing left behind: the run's temporary folder, the worktree of the person's repository.
    expect(await readdir(r.tmp)).toEqual([]);
    const worktrees = (await sh(repo!.dir, "worktree", "list", "--porcelain"))
      .split("\n")
      .filter((l) => l.startsWith("worktree "));
    expect(worktrees).toHaveLength(1);
    expect((await readdir(path.join(r.cwd, "outputs"))).filter((f) => f.endsWith(".md"))).toHaveLength(1);
  }, 30_000);

  it("a second SIGTERM quits at once with 143 (130 for Ctrl-C)", async () => {
    const r = await startRun();
    r.proc.kill("SIGTERM");
    await expect.poll(() => /interrupted \(SIGTERM\)/.test(r.text()), { timeout: 10_000 }).toBe(true);
    r.proc.kill("SIGTERM");
    const end = await r.exited;
    // Either the second signal came first (143), or the run had already stopped (1), or its
    // cleanup had ended and the signal's default action ended the process (a shell sees 143).
    const shellStatus = end.signal === "SIGTERM" ? 143 : end.code;
    expect([143, 1], JSON.stringify(end)).toContain(shellStatus);
    expect(interruptExitCode("SIGTERM")).toBe(143);
    expect(interruptExitCode("SIGINT")).toBe(130);
    expect(interruptExitCode(undefined)).toBe(130);
  }, 30_000);
});
