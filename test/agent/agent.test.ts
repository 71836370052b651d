import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentResultSchema, estimateCost, type ProgressEvent, runFixAgent } from "../../src/agent/index.js";
import type { FixRequest } from "../../src/contracts/fix-request.js";
import { createHostExecutor } from "../../src/sandbox/host.js";
import {
  calls,
  type FakeAnthropic,
  type FakeStep,
  lastToolResults,
  type RecordedRequest,
  startFakeAnthropic,
  text,
  tool,
} from "../helpers/fake-anthropic.js";
import { alive, client, config, makeRepo, sh, type TestRepo } from "./repo.js";

const hostExec = (workspace: string) => createHostExecutor({ workspace, env: {}, cards: [], jobId: "test" });

const BRANCH = "autofix/add";
const TEST_DIR = "autofix-tests/add";

const ADD_BUGGY = `#!/usr/bin/env bash
# Prints the sum of two integers.
echo $(( $1 - $2 ))
`;

const detRequest: FixRequest = {
  deterministic: true,
  prompt: "add.sh returns the wrong sum",
  rawLogs: "expected 5, got -1",
};

let fake: FakeAnthropic | undefined;
let repo: TestRepo | undefined;
afterEach(async () => {
  await fake?.close();
  await repo?.cleanup();
  fake = undefined;
  repo = undefined;
});

/** Phase 1 for the add bug: write the test folder, run it, finish. */
function reproduceAddSteps(): FakeStep[] {
  return [
    calls(tool("read_file", { path: "src/add.sh" })),
    calls(
      tool("write_file", {
        path: `${TEST_DIR}/tests/test_add.sh`,
        content:
          'out=$(bash src/add.sh 2 3)\n[ "$out" = 5 ] || { echo "expected 5, got $out"; exit 1; }\necho ok\n',
      }),
      tool("write_file", { path: `${TEST_DIR}/README.md`, content: "# add\nShows that add.sh subtracts.\n" }),
      tool("write_file", {
        path: `${TEST_DIR}/run_test.sh`,
        content: `#!/usr/bin/env bash\ncd "$(dirname "$0")/../.."\nexec bash ${TEST_DIR}/tests/test_add.sh\n`,
        executable: true,
      }),
    ),
    calls(tool("run_command", { command: `${TEST_DIR}/run_test.sh` })),
    calls(
      tool("finish", {
        test_dir: TEST_DIR,
        command: `bash ${TEST_DIR}/run_test.sh`,
        failure_mode: "add.sh prints 2-3 instead of 2+3",
      }),
    ),
  ];
}

const fixFinish = tool("finish", {
  summary: "Add instead of subtract",
  root_cause: "The arithmetic used minus",
  changes: "src/add.sh: use +",
  performance: "none",
});

function allToolResults(reqs: RecordedRequest[]) {
  return reqs.flatMap((r) => lastToolResults(r));
}

describe("runFixAgent end to end (fake Messages API, real git, real commands)", () => {
  it("reproduces a deterministic bug, fixes it, proves it 2/2 and commits test and fix", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([
      ...reproduceAddSteps(),
      calls(tool("edit_file", { path: "src/add.sh", old_string: "$1 - $2", new_string: "$1 + $2" })),
      calls(tool("run_command", { command: `bash ${TEST_DIR}/run_test.sh` })),
      calls(fixFinish),
    ]);
    const events: ProgressEvent[] = [];
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "FAIL: expected 5, got -1",
      client: client(fake),
      model: "claude-sonnet-5",
      onProgress: (e) => events.push(e),
    });

    expect(result.status, result.reason).toBe("succeeded");
    expect(agentResultSchema.parse(result)).toBeTruthy();
    expect(result.phases.map((p) => [p.phase, p.status])).toEqual([
      ["reproduce", "passed"],
      ["fix", "passed"],
    ]);
    // Gates: 2/2 failures on the base, 2/2 passes after the fix.
    expect(result.gateRuns.map((r) => [r.gate, r.passed])).toEqual([
      ["reproduce", false],
      ["reproduce", false],
      ["fix", true],
      ["fix", true],
    ]);
    expect(result.gateRuns[0]!.outputTail).toContain("expected 5, got -1");
    expect(result.reproduction).toMatchObject({
      path: TEST_DIR,
      command: `bash ${TEST_DIR}/run_test.sh`,
      existing: false,
    });
    // The frozen test is the test folder's git tree in the repro commit.
    expect(result.reproduction!.hash).toBe(
      `tree:${await sh(repo.dir, "rev-parse", `${result.git.reproCommitSha}:${TEST_DIR}`)}`,
    );
    expect(result.fix).toMatchObject({
      summary: "Add instead of subtract",
      rootCause: "The arithmetic used minus",
    });

    // Git: the repro commit holds only the test; the branch holds only the fix, on the base.
    const g = result.git;
    expect(g.baseSha).toBe(repo.baseSha);
    expect(await sh(repo.dir, "rev-parse", `${g.reproCommitSha}^`)).toBe(repo.baseSha);
    expect((await sh(repo.dir, "diff", "--name-only", repo.baseSha, g.reproCommitSha!)).split("\n")).toEqual([
      `${TEST_DIR}/README.md`,
      `${TEST_DIR}/run_test.sh`,
      `${TEST_DIR}/tests/test_add.sh`,
    ]);
    expect(await sh(repo.dir, "rev-parse", `refs/heads/${BRANCH}`)).toBe(g.fixCommitSha);
    expect(await sh(repo.dir, "rev-parse", `${g.fixCommitSha}^`)).toBe(repo.baseSha);
    expect(await sh(repo.dir, "show", `${g.fixCommitSha}:src/add.sh`)).toContain("$1 + $2");
    expect(g.changedFiles).toEqual(["src/add.sh"]);
    expect(await sh(repo.dir, "log", "-1", "--format=%s", g.fixCommitSha!)).toBe(
      "autofix: Add instead of subtract",
    );

    // The model saw real command output, and the stable prefix is marked for caching.
    const results = allToolResults(fake.requests);
    expect(
      results.some((r) => r.content.includes("exit code 1") && r.content.includes("expected 5, got -1")),
    ).toBe(true);
    const first = fake.requests[0]!;
    expect(first.system).toEqual([expect.objectContaining({ cache_control: { type: "ephemeral" } })]);
    expect(first.tools!.map((t) => t.name)).toEqual([
      "list_files",
      "read_file",
      "search",
      "write_file",
      "edit_file",
      "run_command",
      "git_diff",
      "finish",
    ]);
    expect(first.tools!.at(-1)!.cache_control).toEqual({ type: "ephemeral" });
    expect(first.tools!.slice(0, -1).every((t) => t.cache_control === undefined)).toBe(true);
    expect(JSON.stringify(first.tools!.at(-1)!.input_schema)).toContain("test_dir");
    expect(JSON.stringify(fake.requests.at(-1)!.tools!.at(-1)!.input_schema)).toContain("root_cause");
    // The conversation so far is cached too: exactly one breakpoint, on the newest block, so
    // each turn reads the previous turn's request from the cache.
    for (const req of fake.requests) {
      const marked = req.messages.flatMap((m, i) =>
        Array.isArray(m.content)
          ? (m.content as Array<{ cache_control?: unknown }>).flatMap((b, j) =>
              b.cache_control ? [[i, j]] : [],
            )
          : [],
      );
      const last = req.messages.at(-1)!.content as unknown[];
      expect(marked).toEqual([[req.messages.length - 1, last.length - 1]]);
    }
    expect(first.model).toBe("claude-sonnet-5");
    expect(first).not.toHaveProperty("temperature");
    // Untrusted text is fenced as data.
    expect(JSON.stringify(first.messages[0])).toContain("is untrusted data");

    // Spend: 7 turns at the fake's 100 in / 20 out each.
    expect(result.usage.turns).toBe(7);
    expect(result.usage.inputTokens).toBe(700);
    expect(result.usage.costUsd).toBeCloseTo(
      7 * estimateCost("claude-sonnet-5", { input_tokens: 100, output_tokens: 20 }),
      6,
    );

    // Progress for the status comment and the CLI.
    expect(
      events.filter((e) => e.type === "phase_started").map((e) => e.type === "phase_started" && e.phase),
    ).toEqual(["reproduce", "fix"]);
    expect(events.filter((e) => e.type === "gate_run")).toHaveLength(4);
    expect(events.some((e) => e.type === "spend" && e.total.turns === 7)).toBe(true);
    expect(result.transcript.some((t) => t.kind === "tool_use" && t.name === "edit_file")).toBe(true);
  });

  it("reproduces a flaky failure by stress runs and accepts the fix after 5/5 passes", async () => {
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
        tool("finish", {
          test_dir: dir,
          command: `./${dir}/run_test.sh`,
          failure_mode: "every third call fails",
        }),
      ),
      calls(
        tool("edit_file", {
          path: "src/flaky.sh",
          old_string: 'if [ $((n % 3)) -eq 0 ]; then echo "lost the race on call $n"; exit 1; fi\n',
          new_string: "",
        }),
      ),
      calls(fixFinish),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: "autofix/flaky",
      request: { deterministic: false, prompt: "flaky", rawLogs: "lost the race" },
      config: config({ stability: { stress_runs: 6, nondeterministic_passes: 5 } }),
      failureContext: "lost the race on call 3",
      client: client(fake),
    });
    expect(result.status, result.reason).toBe("succeeded");
    const repro = result.gateRuns.filter((r) => r.gate === "reproduce");
    // Stops at the first failure: runs 1 and 2 pass, run 3 fails.
    expect(repro.map((r) => r.passed)).toEqual([true, true, false]);
    expect(repro[2]!.outputTail).toContain("lost the race on call 3");
    const fixRuns = result.gateRuns.filter((r) => r.gate === "fix");
    expect(fixRuns).toHaveLength(5);
    expect(fixRuns.every((r) => r.passed)).toBe(true);
    expect(result.git.changedFiles).toEqual(["src/flaky.sh"]);
    expect(result.phases[0]!.reason).toContain("failed 1 of 3 stress runs");
  });

  it("gives up with a documented reason when the test does not fail on the base commit", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const finish = tool("finish", {
      test_dir: TEST_DIR,
      command: `bash ${TEST_DIR}/run_test.sh`,
      failure_mode: "?",
    });
    fake = await startFakeAnthropic([
      calls(
        tool("write_file", { path: `${TEST_DIR}/tests/t.sh`, content: "true\n" }),
        tool("write_file", { path: `${TEST_DIR}/README.md`, content: "x\n" }),
        tool("write_file", {
          path: `${TEST_DIR}/run_test.sh`,
          content: `bash ${TEST_DIR}/tests/t.sh\n`,
          executable: true,
        }),
      ),
      calls(finish),
      calls(finish),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
      maxFinishAttempts: 2,
    });
    expect(result.status).toBe("failed");
    expect(result.phases).toHaveLength(1);
    expect(result.phases[0]).toMatchObject({ phase: "reproduce", status: "failed", code: "gate_failed" });
    expect(result.reason).toContain("did not fail every run on the base commit");
    // A pass settles a deterministic reproduction gate: one run per check.
    expect(result.gateRuns).toHaveLength(2);
    expect(result.gateRuns.every((r) => r.passed)).toBe(true);
    // The model was told why its finish was refused.
    const refused = lastToolResults(fake.requests[2]!);
    expect(refused[0]).toMatchObject({ is_error: true });
    expect(refused[0]!.content).toContain("reproduction gate failed");
    expect(result.git).toMatchObject({ reproCommitSha: null, fixCommitSha: null, changedFiles: [] });
    expect(await sh(repo.dir, "branch", "--list", BRANCH)).toBe("");
  });

  it("refuses a fix that weakens the frozen test (hash gate)", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([
      ...reproduceAddSteps(),
      // The file tools refuse to touch the frozen test...
      calls(tool("write_file", { path: `${TEST_DIR}/tests/test_add.sh`, content: "exit 0\n" })),
      // ...so the model goes around them with a command.
      calls(tool("run_command", { command: `sed -i 's/exit 1/exit 0/' ${TEST_DIR}/tests/test_add.sh` })),
      calls(fixFinish),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
    });
    expect(result.status).toBe("partial");
    const fixPhase = result.phases.find((p) => p.phase === "fix")!;
    expect(fixPhase.status).toBe("failed");
    expect(fixPhase.reason).toContain("changed since phase 1");
    const last = fixPhase.gates.at(-1)!;
    expect(last.passed).toBe(false);
    expect(last.runs).toHaveLength(0);
    expect(last.testHash).not.toBe(result.reproduction!.hash);
    const results = allToolResults(fake.requests);
    expect(results.some((r) => r.is_error && r.content.includes("frozen reproduction"))).toBe(true);
    expect(result.git.fixCommitSha).toBeNull();
    expect(result.git.reproCommitSha).not.toBeNull();
  });

  it("refuses a fix that passes once but not 2/2", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY, ".gitignore": "state/\n" });
    const halfFix = `mkdir -p state; n=$(cat state/n 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > state/n
if [ $((n % 2)) -eq 1 ]; then echo $(( $1 + $2 )); else echo $(( $1 - $2 )); fi
`;
    fake = await startFakeAnthropic([
      ...reproduceAddSteps(),
      calls(
        tool("edit_file", { path: "src/add.sh", old_string: "echo $(( $1 - $2 ))\n", new_string: halfFix }),
      ),
      calls(fixFinish),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
    });
    expect(result.status).toBe("partial");
    const fixRuns = result.gateRuns.filter((r) => r.gate === "fix");
    expect(fixRuns.map((r) => r.passed)).toEqual([true, false]);
    expect(result.phases.at(-1)!.reason).toContain("passed 1 of the 2 consecutive runs required");
    expect(result.git.fixCommitSha).toBeNull();
  });

  it("ends a phase that runs out of wall time, aborting the model call", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([{ ...calls(tool("list_files", {})), delayMs: 10_000 }]);
    const t0 = Date.now();
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config({ budgets: { reproduce_minutes: 0.01 } }),
      failureContext: "",
      client: client(fake),
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(result.status).toBe("timed_out");
    expect(result.phases[0]).toMatchObject({ phase: "reproduce", status: "timed_out", code: "budget_time" });
    await expect.poll(() => fake!.aborted).toBe(1);
  });

  it("stops at the token cap and asks for no more output than the cap leaves", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const step = { ...calls(tool("list_files", {})), usage: { input_tokens: 600, output_tokens: 100 } };
    fake = await startFakeAnthropic([step, step, step, step]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config({ budgets: { max_tokens: 1000 } }),
      failureContext: "",
      client: client(fake),
    });
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.max_tokens).toBe(300);
    expect(result.status).toBe("failed");
    expect(result.phases[0]).toMatchObject({ code: "budget_tokens" });
    expect(result.usage).toMatchObject({ inputTokens: 1200, outputTokens: 200, turns: 2 });
  });

  it("cancels mid-command and kills the whole process tree", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([
      calls(tool("run_command", { command: "sleep 30 & echo $! > sleeper.pid; wait" })),
    ]);
    const ctrl = new AbortController();
    const pidFile = path.join(repo.dir, "sleeper.pid");
    const t0 = Date.now();
    const running = runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
      signal: ctrl.signal,
    });
    await expect
      .poll(async () => (await readFile(pidFile, "utf8").catch(() => "")).trim(), { timeout: 5000 })
      .not.toBe("");
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(await alive(pid)).toBe(true);
    ctrl.abort();
    const result = await running;
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(result.status).toBe("cancelled");
    expect(result.phases[0]).toMatchObject({ status: "cancelled" });
    expect(await alive(pid)).toBe(false);
    expect(fake.requests).toHaveLength(1);
  });

  it("refuses path and symlink escapes, unknown tools and invalid input without crashing", async () => {
    let outsideDir = "";
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY }, async (dir) => {
      outsideDir = path.join(path.dirname(dir), "outside");
      const { mkdir, symlink } = await import("node:fs/promises");
      await mkdir(outsideDir, { recursive: true });
      await symlink(outsideDir, path.join(dir, "escape"));
    });
    const { writeFile } = await import("node:fs/promises");
    await writeFile(path.join(outsideDir, "secret.txt"), "outside secret\n");
    fake = await startFakeAnthropic([
      calls(
        tool("read_file", { path: "../outside/secret.txt" }),
        tool("read_file", { path: path.join(outsideDir, "secret.txt") }),
        tool("read_file", { path: "escape/secret.txt" }),
        tool("write_file", { path: "escape/new/pwned.txt", content: "x" }),
        tool("write_file", { path: ".git/hooks/pre-commit", content: "x" }),
        tool("rm_rf", { path: "/" }),
        tool("read_file", {}),
        tool("edit_file", { path: "src/add.sh", old_string: "nope", new_string: "x" }),
        tool("read_file", { path: "src/add.sh", start_line: 3, end_line: 3 }),
      ),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
    });
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    const r = lastToolResults(fake.requests[1]!);
    expect(r).toHaveLength(9);
    expect(r.slice(0, 8).every((x) => x.is_error)).toBe(true);
    expect(r[0]!.content).toContain("outside the workspace");
    expect(r[1]!.content).toContain("outside the workspace");
    expect(r[2]!.content).toContain("symlink");
    expect(r[3]!.content).toContain("symlink");
    expect(r[4]!.content).toContain(".git");
    expect(r[5]!.content).toContain('unknown tool "rm_rf"');
    expect(r[6]!.content).toContain("invalid input for read_file");
    expect(r[7]!.content).toContain("not found");
    expect(r[8]).toMatchObject({ content: expect.stringContaining("echo $(( $1 - $2 ))") });
    expect(r[8]!.is_error).toBeUndefined();
    expect(r.some((x) => x.content.includes("outside secret"))).toBe(false);
    expect(existsSync(path.join(outsideDir, "new"))).toBe(false);
    expect(result.status).toBe("failed");
    expect(result.phases[0]!.code).toBe("model_stopped");
  });

  it("runs commands without the service's secrets and redacts what leaves", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const saved = { ...process.env };
    process.env.GITHUB_TOKEN = "plain-value-github-1234567";
    process.env.ANTHROPIC_API_KEY = "plain-value-anthropic-1234567";
    process.env.PRIVATE_KEY_PATH = "/keys/app.pem";
    process.env.MY_SERVICE_API_KEY = "plain-value-service-1234567";
    process.env.AUTOFIX_VISIBLE_MARKER = "visible-1234";
    const leaked = `ghp_${"a".repeat(36)}`;
    try {
      fake = await startFakeAnthropic([
        calls(text(`I found ${leaked} in a log`), tool("run_command", { command: "env" })),
      ]);
      const result = await runFixAgent({
        executor: hostExec(repo.dir),
        baseSha: repo.baseSha,
        branch: BRANCH,
        request: detRequest,
        config: config(),
        failureContext: "",
        client: client(fake),
      });
      const out = lastToolResults(fake.requests[1]!)[0]!.content;
      expect(out).toContain("AUTOFIX_VISIBLE_MARKER=visible-1234");
      for (const secret of [
        "plain-value-github",
        "plain-value-anthropic",
        "/keys/app.pem",
        "plain-value-service",
      ]) {
        expect(out).not.toContain(secret);
      }
      expect(JSON.stringify(result.transcript)).not.toContain(leaked);
      expect(JSON.stringify(result.transcript)).toContain("[REDACTED]");
    } finally {
      process.env = saved;
    }
  });

  it("trims old tool outputs once the context passes the threshold", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY, "src/big.txt": "line of text\n".repeat(200) });
    const reads = Array.from({ length: 8 }, () => tool("read_file", { path: "src/big.txt" }));
    fake = await startFakeAnthropic([
      { ...calls(...reads), usage: { input_tokens: 500 } },
      { ...calls(tool("list_files", {})), usage: { input_tokens: 5000 } },
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config(),
      failureContext: "",
      client: client(fake),
      contextTrimTokens: 1000,
    });
    // Request 2 (context 500 before it) carries all 8 outputs whole; after a 5000-token request
    // the oldest are replaced by a note, keeping the 6 most recent results.
    const contents = (i: number) =>
      fake!.requests[i]!.messages.flatMap((m) =>
        Array.isArray(m.content)
          ? (m.content as Array<{ type: string; content?: unknown }>)
              .filter((b) => b.type === "tool_result")
              .map((b) => String(b.content))
          : [],
      );
    expect(contents(1).filter((c) => c.includes("older tool output removed"))).toHaveLength(0);
    const third = contents(2);
    expect(third).toHaveLength(9);
    expect(third.filter((c) => c.includes("older tool output removed"))).toHaveLength(3);
    expect(third.filter((c) => c.includes("line of text"))).toHaveLength(5);
    expect(result.transcript.some((t) => t.content.includes("trimmed 3 old tool outputs"))).toBe(true);
  });

  it("uses an existing test, derives its command and skips writing one", async () => {
    repo = await makeRepo({
      "src/add.sh": ADD_BUGGY,
      "tests/test_add.sh": 'out=$(bash src/add.sh 2 3); [ "$out" = 5 ] || { echo "got $out"; exit 1; }\n',
    });
    fake = await startFakeAnthropic([
      calls(tool("edit_file", { path: "src/add.sh", old_string: "$1 - $2", new_string: "$1 + $2" })),
      calls(fixFinish),
    ]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: { ...detRequest, existingTestPath: "tests/test_add.sh" },
      config: config(),
      failureContext: "",
      client: client(fake),
    });
    expect(result.status, result.reason).toBe("succeeded");
    expect(result.reproduction).toMatchObject({
      path: "tests/test_add.sh",
      command: "bash tests/test_add.sh",
      existing: true,
    });
    expect(result.git.reproCommitSha).toBeNull();
    expect(result.git.changedFiles).toEqual(["src/add.sh"]);
    // Phase 1 made no model calls: the first request is already the fix phase.
    expect(JSON.stringify(fake.requests[0]!.messages[0])).toContain("Phase 2");
  });

  it("keeps the existing test in the result when it does not fail on the base", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY, "tests/test_ok.sh": "exit 0\n" });
    fake = await startFakeAnthropic([]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: { ...detRequest, existingTestPath: "tests/test_ok.sh" },
      config: config(),
      failureContext: "",
      client: client(fake),
    });
    expect(result.status).toBe("failed");
    expect(result.phases).toEqual([
      expect.objectContaining({ phase: "reproduce", status: "failed", code: "gate_failed" }),
    ]);
    expect(result.reproduction).toMatchObject({ path: "tests/test_ok.sh", existing: true });
    expect(result.git).toMatchObject({ reproCommitSha: null, fixCommitSha: null, changedFiles: [] });
    expect(fake.requests).toHaveLength(0);
  });

  it("runs the configured build first and stops when it fails", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic([]);
    const result = await runFixAgent({
      executor: hostExec(repo.dir),
      baseSha: repo.baseSha,
      branch: BRANCH,
      request: detRequest,
      config: config({ commands: { build: "echo compiling; echo 'error: missing header' >&2; exit 3" } }),
      failureContext: "",
      client: client(fake),
    });
    expect(result.status).toBe("failed");
    expect(result.phases).toEqual([
      expect.objectContaining({ phase: "build", status: "failed", code: "command_failed" }),
    ]);
    expect(result.reason).toContain("missing header");
    expect(fake.requests).toHaveLength(0);
  });
});
