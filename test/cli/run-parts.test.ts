import { describe, expect, it } from "vitest";
import type { AgentResult, ProgressEvent } from "../../src/agent/index.js";
import { OUTCOME_EXIT } from "../../src/cli/command.js";
import {
  formatElapsed,
  ProgressPrinter,
  type StartInfo,
  startClock,
  startLines,
} from "../../src/cli/run/progress.js";
import { runExitCode, summaryLines } from "../../src/cli/run/summary.js";
import { OUTCOME_LABEL, OUTCOMES } from "../../src/contracts/outcome.js";
import type { PipelineOutput } from "../../src/pipeline/run.js";

/**
 * The pure parts of `autofix run`: the plan's and the summary's lines, the progress printer
 * on an injected clock. No git, no files, no network; the end-to-end behaviour is in
 * run.test.ts.
 */

const REPO = "/home/me/src/widgets";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const BRANCH = "autofix/add-sh-returns-the-wrong-sum";

describe("startLines", () => {
  const start: StartInfo = {
    prompt: "add.sh returns the wrong sum\nmore detail",
    repo: REPO,
    baseRef: "HEAD",
    baseSha: SHA,
    failure: "deterministic: ...",
    url: undefined,
    existingTestPath: undefined,
    model: "m",
    branch: { name: BRANCH, reused: false },
    publish: null,
    dryRun: false,
    outDir: "/out",
  };

  it("says what the run will do, local only without a token", () => {
    expect(startLines(start)).toEqual([
      "autofix run: add.sh returns the wrong sum",
      `  repository: ${REPO} (base HEAD = 0123456789ab; worked on in a temporary worktree)`,
      "  failure:    deterministic: ...",
      "  logs:       raw-logs from the info.json",
      "  test:       written in phase 1",
      "  model:      m",
      `  fix branch: ${BRANCH}`,
      "  publish:    nothing: no GITHUB_TOKEN or GH_TOKEN, everything stays local",
      "  report:     /out",
      "",
    ]);
  });

  it("an existing test, a reused branch, a dry run that would publish", () => {
    const lines = startLines({
      ...start,
      existingTestPath: "tests/t.sh",
      url: "https://github.com/o/r/actions/runs/1",
      branch: { name: BRANCH, reused: true },
      publish: {
        remoteUrl: "https://github.com/acme/widgets.git",
        owner: "acme",
        repo: "widgets",
        baseBranch: "main",
      },
      dryRun: true,
    });
    expect(lines).toContain("  logs:       https://github.com/o/r/actions/runs/1");
    expect(lines).toContain("  test:       existing tests/t.sh (phase 1 writes none)");
    expect(lines).toContain(`  fix branch: ${BRANCH} (the branch of an earlier run: updated)`);
    expect(lines).toContain(
      `  publish:    dry run: would push ${BRANCH} to origin (https://github.com/acme/widgets.git) and open a draft PR on acme/widgets against main`,
    );
  });
});

describe("summaryLines and the exit code", () => {
  const result = (
    r: Partial<Omit<AgentResult, "git">> & { git?: Partial<AgentResult["git"]> } = {},
  ): AgentResult =>
    ({
      status: "succeeded",
      reason: "proven",
      reproduction: {
        path: "autofix-tests/add",
        command: "./autofix-tests/add/run_test.sh",
        hash: "h",
        failureMode: "",
        existing: false,
      },
      ...r,
      git: {
        branch: BRANCH,
        baseSha: SHA,
        reproCommitSha: "aaaaaaaaaaaaaaaaaaaa",
        fixCommitSha: "bbbbbbbbbbbbbbbbbbbb",
        changedFiles: ["src/add.sh"],
        ...r.git,
      },
    }) as AgentResult;

  const output = (o: Partial<PipelineOutput> = {}): PipelineOutput => ({
    status: "succeeded",
    result: result(),
    reportPath: "/out/r.md",
    report: "",
    digest: "",
    pullRequest: null,
    pushed: null,
    planned: [],
    ...o,
  });

  it("a proven fix: the branch, the reproduction ref, the report last", () => {
    expect(summaryLines(output(), BRANCH, false)).toEqual([
      "",
      "Status: Success (exit 0)",
      `  fix:          branch ${BRANCH} at bbbbbbbbbbbb (changed: src/add.sh); see it with: git show ${BRANCH}`,
      `  reproduction: refs/autofix-repro/${BRANCH} at aaaaaaaaaaaa (autofix-tests/add); run it with: ./autofix-tests/add/run_test.sh`,
      "Report: /out/r.md",
    ]);
  });

  it("published: the push and the PR", () => {
    const lines = summaryLines(
      output({
        pushed: { branch: BRANCH, sha: "cccccccccccccccc" },
        pullRequest: { url: "https://github.com/acme/widgets/pull/7", number: 7, created: false },
        planned: ["one"],
      }),
      BRANCH,
      false,
    );
    expect(lines).toContain(`  pushed:       ${BRANCH} at cccccccccccc to origin`);
    expect(lines).toContain("  pull request: https://github.com/acme/widgets/pull/7 (updated)");
    expect(lines).toContain("  publishing:");
    expect(lines).toContain("    - one");
  });

  it("a dry run lists what it would have done", () => {
    const lines = summaryLines(output({ planned: ["would push x", "would open y"] }), BRANCH, true);
    expect(lines.slice(-4)).toEqual([
      "  dry run: nothing was pushed or opened; it would:",
      "    - would push x",
      "    - would open y",
      "Report: /out/r.md",
    ]);
  });

  it("no fix: the reason on the status line, an existing test, the problem", () => {
    const lines = summaryLines(
      output({
        status: "failed",
        result: result({
          status: "failed",
          reason: "the fix gate refused",
          reproduction: {
            path: "tests/t.sh",
            command: "bash tests/t.sh",
            hash: "h",
            failureMode: "",
            existing: true,
          },
          git: { reproCommitSha: null, fixCommitSha: null, changedFiles: [] },
        }),
        problem: "something broke",
      }),
      BRANCH,
      false,
    );
    expect(lines).toEqual([
      "",
      "Status: Failed (exit 1): the fix gate refused",
      "  fix:          none accepted; no fix branch was created",
      "  reproduction: existing test tests/t.sh (bash tests/t.sh)",
      "  problem:      something broke",
      "Report: /out/r.md",
    ]);
  });

  it("no agent result at all (it never started)", () => {
    expect(summaryLines(output({ status: "failed", result: null }), BRANCH, false).slice(1, 3)).toEqual([
      "Status: Failed (exit 1)",
      "  fix:          none accepted; no fix branch was created",
    ]);
  });

  it("every outcome: the shared exit code and label", () => {
    for (const status of OUTCOMES) {
      expect(runExitCode({ status })).toBe(OUTCOME_EXIT[status]);
      expect(summaryLines(output({ status, result: null }), BRANCH, false)[1]).toBe(
        `Status: ${OUTCOME_LABEL[status]} (exit ${OUTCOME_EXIT[status]})`,
      );
    }
    expect(runExitCode({ status: "partial" })).toBe(3);
  });
});

describe("progress on an injected clock", () => {
  it("startClock measures from its first reading of the clock", () => {
    let t = Date.parse("2026-02-04T16:30:00Z");
    const clock = startClock(() => new Date(t));
    expect(clock.startedAt.toISOString()).toBe("2026-02-04T16:30:00.000Z");
    expect(clock.elapsed()).toBe(0);
    t += 65_500;
    expect(clock.elapsed()).toBe(65_500);
  });

  it("formatElapsed: [mm:ss], [h:mm:ss] past an hour, never negative", () => {
    expect(formatElapsed(0)).toBe("[00:00]");
    expect(formatElapsed(999)).toBe("[00:00]");
    expect(formatElapsed(65_000)).toBe("[01:05]");
    expect(formatElapsed(3_600_000 + 61_000)).toBe("[1:01:01]");
    expect(formatElapsed(-5)).toBe("[00:00]");
  });

  it("stamps each line with the elapsed time it is given and carries the spend", () => {
    let ms = 0;
    const lines: string[] = [];
    const p = new ProgressPrinter(
      (l) => lines.push(l),
      () => ms,
      { reproduce: 2, fix: 5 },
    );
    const usage = { inputTokens: 1200, outputTokens: 300, cacheReadTokens: 0, cacheWriteTokens: 0, turns: 1 };
    const events: ProgressEvent[] = [
      { type: "phase_started", phase: "reproduce", budget: { minutes: 5, turns: 60 } },
      { type: "turn", phase: "reproduce", turn: 1, maxTurns: 60 },
      {
        type: "spend",
        phase: "reproduce",
        usage: { ...usage, costUsd: 0.05 },
        total: { ...usage, costUsd: 0.05 },
      },
    ];
    for (const e of events) p.apply(e);
    ms = 61_000;
    p.apply({
      type: "gate_run",
      phase: "fix",
      run: {
        gate: "fix",
        run: 3,
        passed: true,
        exitCode: 0,
        signal: null,
        timedOut: false,
        durationMs: 1234,
        outputTail: "",
      },
    });
    ms = 62_000;
    p.line("publish: pushing");
    expect(lines).toEqual([
      "[00:00] reproduce: started · budget 5 min, 60 turns",
      "[00:00] reproduce: model turn 1 · 1.5k tokens · $0.050",
      "[01:01] fix: run 3/5 with the fix passed (exit 0, 1.2 s) · 1.5k tokens · $0.050",
      "[01:02] publish: pushing",
    ]);
  });
});
