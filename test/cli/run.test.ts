import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { execa } from "execa";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { createRunCommand, type RunDeps } from "../../src/cli/commands/run.js";
import { createProveCommand } from "../../src/cli/run/prove.js";
import { runCli } from "../../src/cli/run.js";
import { loadTranscript, startReplayServer } from "../../src/demo/replay.js";
import { createDemoRepo } from "../../src/demo/repo.js";
import { makeRepo, sh, type TestRepo } from "../agent/repo.js";
import { ADD_BUGGY, addBugFix, addBugSession } from "../helpers/add-bug.js";
import { calls, type FakeAnthropic, startFakeAnthropic, tool } from "../helpers/fake-anthropic.js";

/**
 * `autofix run` end to end: real git repositories in temp folders, the real harness and gate
 * commands, the real SDK against a fake Messages API, nock for the GitHub API.
 */

const TEST_DIR = "autofix-tests/add";
const PROMPT = "add.sh returns the wrong sum";
const BRANCH = "autofix/add-sh-returns-the-wrong-sum";
const TOKEN = `ghp_${"R".repeat(36)}`;
const EXAMPLE = path.resolve(import.meta.dirname, "../../examples/add-bug");

let fake: FakeAnthropic | undefined;
let repo: TestRepo | undefined;
const dirs: string[] = [];

beforeAll(() => {
  nock.disableNetConnect();
  // The fake Messages API and the replay server listen on the loopback interface.
  nock.enableNetConnect((host: string) => host.startsWith("127.0.0.1"));
});
afterAll(() => nock.enableNetConnect());
afterEach(async () => {
  nock.cleanAll();
  await fake?.close();
  await repo?.cleanup();
  fake = undefined;
  repo = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `autofix-run-test-${name}-`));
  // The run's sandbox may run as another uid (bubblewrap as root): it must pass through.
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}

interface Run {
  code: number;
  out: string[];
  err: string[];
  text: string;
  tmp: string;
}

/**
 * Run `autofix run` in-process with a client for `baseURL` and a clock that stands still at
 * 2026-02-04T16:30:00Z: every elapsed stamp reads [00:00] and the report's name is fixed,
 * however slow the machine.
 */
async function run(
  args: string[],
  o: { cwd: string; env?: NodeJS.ProcessEnv; baseURL?: string; deps?: Partial<RunDeps> },
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { ANTHROPIC_API_KEY: "test-key", ...o.env },
    cwd: o.cwd,
  };
  const t0 = Date.parse("2026-02-04T16:30:00Z");
  const tmp = await tempDir("work");
  const command = createRunCommand({
    client: () => new Anthropic({ apiKey: "test", baseURL: o.baseURL ?? fake!.url, maxRetries: 0 }),
    now: () => new Date(t0),
    onInterrupt: () => () => {},
    tmpDir: () => tmp,
    ...o.deps,
  });
  const code = await runCli(["run", ...args], io, [command]);
  return { code, out, err, text: [...out, ...err].join("\n"), tmp };
}

async function writeInfo(dir: string, info: Record<string, unknown>, name = "info.json"): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, JSON.stringify(info, null, 2));
  return p;
}

const detInfo = {
  deterministic: true,
  url: "",
  prompt: PROMPT,
  "raw-logs": "expected 5, got -1",
  "existing-test-path": "",
};

async function reportOf(dir: string): Promise<{ name: string; text: string }> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".md"));
  expect(files).toHaveLength(1);
  return { name: files[0]!, text: await readFile(path.join(dir, files[0]!), "utf8") };
}

async function worktreeCount(dir: string): Promise<number> {
  return (await sh(dir, "worktree", "list", "--porcelain"))
    .split("\n")
    .filter((l) => l.startsWith("worktree ")).length;
}

describe("autofix run", () => {
  it("fixes a deterministic bug end to end without touching the working tree", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY, "README.md": "calc\n" });
    // The person is in the middle of something: an edit and an untracked file.
    await writeFile(path.join(repo.dir, "README.md"), "calc, being edited\n");
    await writeFile(path.join(repo.dir, "notes.txt"), "mine\n");
    const statusBefore = await sh(repo.dir, "status", "--porcelain");
    fake = await startFakeAnthropic(addBugSession(TEST_DIR));
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, detInfo);

    const r = await run(["--repo", repo.dir], { cwd });

    expect(r.code, r.text).toBe(0);
    // Progress: one line per event, prefixed with the elapsed time.
    expect(r.out).toContain("[00:00] reproduce: started · budget 5 min, 60 turns");
    expect(
      r.out.some((l) => /^\[\d\d:\d\d\] reproduce: run 2\/2 on the base commit failed \(exit 1/.test(l)),
    ).toBe(true);
    expect(
      r.out.some((l) =>
        /^\[\d\d:\d\d\] fix: run 2\/2 with the fix passed \(exit 0, .*\) · \d+ tokens · \$/.test(l),
      ),
    ).toBe(true);
    expect(
      r.out.some((l) => /^\[\d\d:\d\d\] fix: passed: passed 2\/2 consecutive runs · 3 turns/.test(l)),
    ).toBe(true);
    expect(r.out).toContain("Status: Success (exit 0)");

    // The report: default folder outputs/ under the current folder, named from the start and the prompt.
    const report = await reportOf(path.join(cwd, "outputs"));
    expect(report.name).toBe("2026-02-04_16-30-00_add-sh-returns-the-wrong-sum.md");
    expect(r.out.at(-1)).toBe(`Report: ${path.join(cwd, "outputs", report.name)}`);
    expect(report.text).toContain("- **Status:** Success");
    expect(report.text).toContain("| gate | run | exit | time | result |");
    expect(report.text).toMatch(/\| reproduce \| 2 \| 1 \| \d+s \| fail \|/);
    expect(report.text).toMatch(/\| fix \| 2 \| 0 \| \d+s \| pass \|/);

    // The branch holding the fix and the ref holding the reproduction live in the repository.
    const fixSha = await sh(repo.dir, "rev-parse", `refs/heads/${BRANCH}`);
    expect(await sh(repo.dir, "rev-parse", `${fixSha}^`)).toBe(repo.baseSha);
    expect(await sh(repo.dir, "show", `${fixSha}:src/add.sh`)).toContain("$1 + $2");
    const reproSha = await sh(repo.dir, "rev-parse", `refs/autofix-repro/${BRANCH}`);
    expect(await sh(repo.dir, "ls-tree", "-r", "--name-only", reproSha)).toContain(`${TEST_DIR}/run_test.sh`);
    expect(r.text).toContain(`fix:          branch ${BRANCH} at ${fixSha.slice(0, 12)}`);
    expect(r.text).toContain(`reproduction: refs/autofix-repro/${BRANCH} at ${reproSha.slice(0, 12)}`);
    expect(r.text).toContain("not pushed (no GitHub token)");
    // The hints after the run: the test is in the repro ref, and `autofix prove` re-runs the proof.
    expect(r.out).toContain(
      `    prove it:   autofix prove --repo ${repo.dir} ${BRANCH}  (in the sandbox: fails on the base, passes on the fix)`,
    );
    const proved: string[] = [];
    const proveIo: CliIO = { out: (l) => proved.push(l), err: (l) => proved.push(l), env: {}, cwd };
    const proveTmp = await tempDir("prove");
    expect(
      await runCli(["prove", "--repo", repo.dir, BRANCH], proveIo, [
        createProveCommand({ tmpDir: () => proveTmp }),
      ]),
      proved.join("\n"),
    ).toBe(0);
    expect(proved).toContain(`  command:     bash ${TEST_DIR}/run_test.sh`);
    expect(proved.at(-1)).toMatch(/^Proven: the frozen test fails on the base/);

    // The working tree is exactly as it was: same branch, same commit, same edits, no test folder.
    expect(await sh(repo.dir, "status", "--porcelain")).toBe(statusBefore);
    expect(await sh(repo.dir, "symbolic-ref", "--short", "HEAD")).toBe("main");
    expect(await sh(repo.dir, "rev-parse", "HEAD")).toBe(repo.baseSha);
    expect(await readFile(path.join(repo.dir, "src/add.sh"), "utf8")).toBe(ADD_BUGGY);
    expect(await readFile(path.join(repo.dir, "README.md"), "utf8")).toBe("calc, being edited\n");
    expect(existsSync(path.join(repo.dir, "autofix-tests"))).toBe(false);
    // The temporary repository is gone.
    expect(await worktreeCount(repo.dir)).toBe(1);
    expect(await readdir(r.tmp)).toEqual([]);
  });

  it("non-deterministic: a stress reproduction, then the fix must pass 5/5", async () => {
    const flaky = `#!/usr/bin/env bash
mkdir -p state
n=$(cat state/count 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > state/count
if [ $((n % 3)) -eq 0 ]; then echo "lost the race on call $n"; exit 1; fi
echo "ok $n"
`;
    repo = await makeRepo({ "src/flaky.sh": flaky, ".gitignore": "state/\n" });
    const dir = "autofix-tests/flaky";
    fake = await startFakeAnthropic([
      calls(
        tool("write_file", { path: `${dir}/tests/stress.sh`, content: "exec bash src/flaky.sh\n" }),
        tool("write_file", { path: `${dir}/README.md`, content: "# flaky\n" }),
        tool("write_file", {
          path: `${dir}/run_test.sh`,
          content: `#!/usr/bin/env bash\nexec bash ${dir}/tests/stress.sh\n`,
          executable: true,
        }),
      ),
      calls(
        tool("finish", { test_dir: dir, command: `./${dir}/run_test.sh`, failure_mode: "every third call" }),
      ),
      calls(
        tool("edit_file", {
          path: "src/flaky.sh",
          old_string: 'if [ $((n % 3)) -eq 0 ]; then echo "lost the race on call $n"; exit 1; fi\n',
          new_string: "",
        }),
      ),
      calls(
        tool("finish", {
          summary: "No more lost races",
          root_cause: "flaky.sh failed every third call",
          changes: "src/flaky.sh: drop the race",
          performance: "none",
        }),
      ),
    ]);
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, {
      deterministic: false,
      url: "",
      prompt: "flaky.sh loses a race",
      "raw-logs": "lost the race on call 3",
    });

    const r = await run(["info.json", "--repo", repo.dir, "--out", "reports"], { cwd });

    expect(r.code, r.text).toBe(0);
    expect(r.text).toContain("non-deterministic: a stress reproduction must fail at least once in 5 runs");
    // The stress gate stops at its first failure (run 3); the fix gate needs five passes in a row.
    expect(r.text).toMatch(/reproduce: run 3\/5 on the base commit failed \(exit 1/);
    for (let i = 1; i <= 5; i++) expect(r.text).toMatch(new RegExp(`fix: run ${i}/5 with the fix passed`));
    const report = await reportOf(path.join(cwd, "reports"));
    expect(report.text).toContain("- **Status:** Success");
    expect(report.text).toMatch(/\| fix \| 5 \| 0 \| \d+s \| pass \|/);
    expect(report.text).toContain("failed 1 of 3 stress runs");
    expect(await sh(repo.dir, "rev-parse", "--verify", "refs/heads/autofix/flaky-sh-loses-a-race")).toMatch(
      /^[0-9a-f]{40}$/,
    );
  });

  it("uses an existing test: no model turn in phase 1, the gate still runs on the base", async () => {
    repo = await makeRepo({
      "src/add.sh": ADD_BUGGY,
      "tests/test_add.sh": 'out=$(bash src/add.sh 2 3); [ "$out" = 5 ] || { echo "got $out"; exit 1; }\n',
    });
    // Someone already has a branch of the default name: it is left alone, the run takes -2.
    await sh(repo.dir, "branch", BRANCH);
    fake = await startFakeAnthropic(addBugFix(TEST_DIR));
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, { ...detInfo, "existing-test-path": "tests/test_add.sh" });

    const r = await run(["info.json", "--repo", repo.dir, "--out", cwd], { cwd });

    expect(r.code, r.text).toBe(0);
    expect(await sh(repo.dir, "rev-parse", BRANCH)).toBe(repo.baseSha);
    expect(await sh(repo.dir, "show", `${BRANCH}-2:src/add.sh`)).toContain("$1 + $2");
    expect(r.text).toContain(`fix branch: ${BRANCH}-2`);
    expect(r.text).toContain("test:       existing tests/test_add.sh (phase 1 writes none)");
    expect(r.text).toMatch(/reproduce: run 2\/2 on the base commit failed/);
    expect(r.text).toContain("reproduction: existing test tests/test_add.sh (bash tests/test_add.sh)");
    expect(fake.requests).toHaveLength(3);
    expect(JSON.stringify(fake.requests[0]!.messages[0])).toContain("Phase 2");
    const report = await reportOf(cwd);
    expect(report.text).toContain("- existing test: `tests/test_add.sh`");
    expect(report.text).toContain("(existing test, no commit)");
  });

  it("refuses an existing test that is not committed: the run uses the base commit only", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    await mkdir(path.join(repo.dir, "tests"));
    await writeFile(path.join(repo.dir, "tests/test_add.sh"), "exit 1\n");
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, { ...detInfo, "existing-test-path": "tests/test_add.sh" });
    fake = await startFakeAnthropic([]);
    const r = await run(["--repo", repo.dir], { cwd });
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toMatch(
      /"existing-test-path" tests\/test_add\.sh is not in the base commit [0-9a-f]{10}/,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("bad input: every problem printed at once, exit 2, nothing started", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([]);
    const cwd = await tempDir("cwd");
    await writeInfo(
      cwd,
      { deterministic: "true", prompt: "", url: "", "raw-logs": "", extra: 1 },
      "bad.json",
    );

    const r = await run(["bad.json", "--repo", repo.dir], { cwd, env: { ANTHROPIC_API_KEY: "" } });

    expect(r.code).toBe(2);
    expect(r.err[0]).toBe("cannot start (4 problems):");
    const problems = r.err.slice(1, 5);
    expect(problems[0]).toMatch(/^ {2}- bad\.json: "deterministic" must be true or false without quotes/);
    expect(problems[1]).toMatch(/^ {2}- bad\.json: "prompt" is required/);
    expect(problems[2]).toMatch(/^ {2}- bad\.json: give a log source/);
    expect(problems[3]).toMatch(/^ {2}- ANTHROPIC_API_KEY is not set/);
    expect(r.err[5]).toMatch(/^usage: autofix run/);
    expect(r.out).toContain('note: unknown field "extra" ignored');
    expect(fake.requests).toHaveLength(0);
    expect(existsSync(path.join(cwd, "outputs"))).toBe(false);

    // Not a repository, a repository without a commit, a missing info.json, a url without a token.
    const plain = await tempDir("plain");
    const empty = await tempDir("empty");
    await sh(empty, "init", "-q");
    await writeInfo(cwd, { ...detInfo, url: "https://github.com/o/r/actions/runs/1" }, "url.json");
    const a = await run(["url.json", "--repo", plain], { cwd });
    expect(a.code).toBe(2);
    expect(a.err.join("\n")).toContain(`${plain} is not a git repository`);
    expect(a.err.join("\n")).toContain(
      'gives a "url": reading its Actions logs needs GITHUB_TOKEN or GH_TOKEN',
    );
    const b = await run(["--repo", empty], { cwd });
    expect(b.code).toBe(2);
    expect(b.err.join("\n")).toContain("has no commit yet");
    expect(b.err.join("\n")).toContain("info.json: cannot read");
    const c = await run(["bad.json", "--nope"], { cwd });
    expect(c.code).toBe(2);
    expect(c.err[0]).toMatch(/^autofix run: unknown option --nope$/m);
  });

  it("--dry-run with a token: prints the push and the PR it would make and contacts nothing", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    await sh(repo.dir, "remote", "add", "origin", "https://github.com/acme/widgets.git");
    fake = await startFakeAnthropic(addBugSession(TEST_DIR));
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, detInfo);
    const unmatched: string[] = [];
    const onNoMatch = (req: { host?: string; hostname?: string }) =>
      unmatched.push(String(req.host ?? req.hostname));
    nock.emitter.on("no match", onNoMatch);
    try {
      const r = await run(["--repo", repo.dir, "--dry-run"], { cwd, env: { GITHUB_TOKEN: TOKEN } });
      expect(r.code, r.text).toBe(0);
      const fixSha = await sh(repo.dir, "rev-parse", `refs/heads/${BRANCH}`);
      expect(r.text).toContain(
        `publish:    dry run: would push ${BRANCH} to origin (https://github.com/acme/widgets.git) and open a draft PR on acme/widgets against main`,
      );
      expect(r.out).toContain("  dry run: nothing was pushed or opened; it would:");
      expect(r.out).toContain(
        `    - would push ${fixSha} to ${BRANCH} on https://github.com/acme/widgets.git`,
      );
      expect(r.out.some((l) => l.startsWith('    - would open a draft PR against main: "'))).toBe(true);
      expect(r.text).not.toContain(TOKEN);
      const report = await reportOf(path.join(cwd, "outputs"));
      expect(report.text).toContain("- **Status:** Success");
      expect(report.text).not.toContain("could not be published");
    } finally {
      nock.emitter.removeListener("no match", onNoMatch);
    }
    // Only the fake Messages API on the loopback was contacted.
    expect(unmatched.filter((h) => !h.startsWith("127.0.0.1"))).toEqual([]);
  });

  it("with a token: pushes the fix branch to origin and opens a draft PR", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const remote = path.join(await tempDir("remote"), "widgets.git");
    await execa("git", ["init", "-q", "--bare", "-b", "main", remote]);
    await sh(repo.dir, "remote", "add", "origin", `file://${remote}`);
    await sh(repo.dir, "push", "-q", "origin", "main");
    fake = await startFakeAnthropic(addBugSession(TEST_DIR));
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, detInfo);
    let created: Record<string, unknown> | undefined;
    const api = nock("https://api.github.com", { reqheaders: { authorization: `token ${TOKEN}` } })
      .get("/repos/acme/widgets/pulls")
      .query({ head: `acme:${BRANCH}`, state: "open", per_page: "10" })
      .reply(200, [])
      .post("/repos/acme/widgets/pulls", (b) => {
        created = b;
        return true;
      })
      .reply(201, { number: 7, html_url: "https://github.com/acme/widgets/pull/7" });

    // Without --github-repo the file:// origin names no GitHub repository: a clear refusal.
    const refused = await run(["--repo", repo.dir], { cwd, env: { GH_TOKEN: TOKEN } });
    expect(refused.code).toBe(2);
    expect(refused.err.join("\n")).toContain("cannot tell the GitHub repository from origin");
    expect(fake.requests).toHaveLength(0);

    const r = await run(["--repo", repo.dir, "--github-repo", "acme/widgets"], {
      cwd,
      env: { GH_TOKEN: TOKEN },
    });

    expect(r.code, r.text).toBe(0);
    expect(api.isDone()).toBe(true);
    const fixSha = await sh(repo.dir, "rev-parse", `refs/heads/${BRANCH}`);
    const remoteSha = (
      await execa("git", ["--git-dir", remote, "rev-parse", `refs/heads/${BRANCH}`])
    ).stdout.trim();
    expect(remoteSha).toBe(fixSha);
    expect(created).toMatchObject({ head: BRANCH, base: "main", draft: true });
    expect(String(created!.body)).toContain("reproduction");
    expect(r.text).toContain("[00:00] publish: pushing");
    expect(r.text).toContain("pull request: https://github.com/acme/widgets/pull/7 (opened, draft)");
    expect(r.text).toContain(`pushed:       ${BRANCH} at ${fixSha.slice(0, 12)} to origin`);
    expect(r.text).not.toContain(TOKEN);
    const report = await reportOf(path.join(cwd, "outputs"));
    expect(report.text).toContain("- opened: https://github.com/acme/widgets/pull/7");
    expect(report.text).not.toContain(TOKEN);
    // The credential helper's temp folder went with the worktree.
    expect(await readdir(r.tmp)).toEqual([]);
  });

  it("Ctrl-C aborts the run; the report is still written, status cancelled, exit 1", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    // The model's answer would come long after the test's timeout: only the abort ends the run.
    fake = await startFakeAnthropic([{ ...calls(tool("list_files", {})), delayMs: 600_000 }]);
    const cwd = await tempDir("cwd");
    await writeInfo(cwd, detInfo);
    let interrupt: (() => void) | undefined;
    const running = run(["--repo", repo.dir], {
      cwd,
      deps: {
        onInterrupt: (h) => {
          interrupt = h;
          return () => {
            interrupt = undefined;
          };
        },
      },
    });
    await expect.poll(() => fake!.requests.length, { timeout: 5000 }).toBe(1);
    interrupt!();
    const r = await running;
    expect(r.code).toBe(1);
    // The pending model call was cut off, not answered.
    await expect.poll(() => fake!.aborted).toBe(1);
    expect(r.text).toMatch(/\[\d\d:\d\d\] interrupted: stopping the run/);
    expect(r.text).toContain("Status: Cancelled (exit 1)");
    expect(interrupt).toBeUndefined();
    const report = await reportOf(path.join(cwd, "outputs"));
    expect(report.text).toContain("- **Status:** Cancelled");
    expect(await worktreeCount(repo.dir)).toBe(1);
  });

  it("the demo: the recorded transcript walks every phase of examples/add-bug", async () => {
    const work = await tempDir("demo");
    const demoRepo = path.join(work, "repo");
    const base = await createDemoRepo(path.join(EXAMPLE, "repo"), demoRepo);
    const transcript = await loadTranscript(path.join(EXAMPLE, "transcript.json"));
    const server = await startReplayServer(transcript);
    try {
      const r = await run(
        [path.join(EXAMPLE, "info.json"), "--repo", demoRepo, "--out", path.join(work, "outputs")],
        { cwd: work, baseURL: server.url },
      );
      expect(server.refusals()).toEqual([]);
      expect(r.code, r.text).toBe(0);
      expect(server.remaining()).toBe(0);
      expect(r.text).toMatch(/reproduce: gate passed: failed 2\/2 runs on the base commit/);
      expect(r.text).toMatch(/fix: gate passed: passed 2\/2 consecutive runs/);
      const report = await reportOf(path.join(work, "outputs"));
      expect(report.text).toContain("- **Status:** Success");
      const branch = "autofix/add-sh-drops-the-last-number";
      const fixed = await sh(demoRepo, "show", `${branch}:src/add.sh`);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash, not a template
      expect(fixed).toContain('while [ "$i" -lt "${#nums[@]}" ]; do');
      expect(await sh(demoRepo, "rev-parse", `${branch}^`)).toBe(base);
      // The repository's own CI check passes on the fix branch and fails on the base.
      const check = await tempDir("check");
      await execa("git", ["-C", demoRepo, "worktree", "add", "-q", "--detach", check, branch]);
      expect((await execa("bash", ["ci/check.sh"], { cwd: check, reject: false })).exitCode).toBe(0);
      expect((await execa("bash", ["ci/check.sh"], { cwd: demoRepo, reject: false })).exitCode).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe("replay server", () => {
  it("answers in order, refuses a request off the recording and one past the end", async () => {
    const transcript = await loadTranscript(path.join(EXAMPLE, "transcript.json"));
    const server = await startReplayServer({ ...transcript, responses: transcript.responses.slice(0, 2) });
    const post = async (messages: unknown[]) => {
      const res = await fetch(`${server.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", max_tokens: 10, messages }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      const first = await post([{ role: "user", content: "go" }]);
      expect(first.status).toBe(200);
      expect(first.body.id).toBe(transcript.responses[0]!.id);
      const toolId = first.body.content.find((b: any) => b.type === "tool_use").id;
      const wrong = await post([
        { role: "user", content: "go" },
        { role: "assistant", content: first.body.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_other", content: "x" }] },
      ]);
      expect(wrong.status).toBe(400);
      expect(wrong.body.error.message).toContain(`expected tool results for ${toolId}, got toolu_other`);
      const ok = await post([
        { role: "user", content: "go" },
        { role: "assistant", content: first.body.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: toolId, content: "x" }] },
      ]);
      expect(ok.status).toBe(200);
      expect(ok.body.id).toBe(transcript.responses[1]!.id);
      const past = await post([{ role: "user", content: "again" }]);
      expect(past.status).toBe(400);
      expect(past.body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
      expect(past.body.error.message).toContain("no more responses (all 2 were served)");
      expect(server.refusals()).toHaveLength(2);
    } finally {
      await server.close();
    }
  });
});
