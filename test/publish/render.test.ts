import { describe, expect, it } from "vitest";
import type { AgentResult, GateRun } from "../../src/agent/index.js";
import { ChecklistTracker } from "../../src/pipeline/progress.js";
import { prTitle, renderPrBody } from "../../src/publish/pr-body.js";
import {
  clipDiff,
  isLocalRun,
  LOCAL_RUN_MODE,
  type ReportInput,
  renderReport,
  reportDigest,
  reportFileName,
  reportStatus,
} from "../../src/publish/report.js";
import { endSteps, settleSteps, startStep } from "../../src/status/checklist.js";
import { defaultSteps, type StatusStep } from "../../src/status/model.js";

const usage = {
  inputTokens: 12_000,
  outputTokens: 3_000,
  cacheReadTokens: 8_000,
  cacheWriteTokens: 2_000,
  costUsd: 0.42,
  turns: 9,
};
const run = (gate: "reproduce" | "fix", n: number, passed: boolean, ms = 1200): GateRun => ({
  gate,
  run: n,
  exitCode: passed ? 0 : 1,
  signal: null,
  timedOut: false,
  durationMs: ms,
  passed,
  outputTail: passed ? "ok" : "expected 5, got -1",
});

function result(over: Partial<AgentResult> = {}): AgentResult {
  const reproRuns = [run("reproduce", 1, false), run("reproduce", 2, false)];
  const refused = [run("fix", 1, true), run("fix", 2, false)];
  const accepted = [run("fix", 1, true, 900), run("fix", 2, true, 1500)];
  return {
    status: "succeeded",
    reason: "the reproduction failed on the base commit and passes with the fix",
    phases: [
      {
        phase: "reproduce",
        status: "passed",
        code: "gate_passed",
        reason: "2/2 runs failed",
        startedAt: "2026-11-24T10:00:00.000Z",
        durationMs: 40_000,
        turns: 4,
        usage,
        gates: [
          {
            gate: "reproduce",
            passed: true,
            reason: "2/2 runs failed",
            runs: reproRuns,
            testHash: "sha256:ab",
          },
        ],
      },
      {
        phase: "fix",
        status: "passed",
        code: "gate_passed",
        reason: "2/2 passed",
        startedAt: "2026-11-24T10:00:40.000Z",
        durationMs: 80_000,
        turns: 5,
        usage,
        gates: [
          {
            gate: "fix",
            passed: false,
            reason: "run 2 failed (exit 1)",
            runs: refused,
            testHash: "sha256:ab",
          },
          { gate: "fix", passed: true, reason: "2/2 passed", runs: accepted, testHash: "sha256:ab" },
        ],
      },
    ],
    reproduction: {
      path: "autofix-tests/o-r-7",
      command: "bash autofix-tests/o-r-7/run_test.sh",
      hash: "sha256:abcdef0123456789abcdef",
      failureMode: "add.sh subtracts",
      existing: false,
    },
    gateRuns: [...reproRuns, ...refused, ...accepted],
    fix: {
      summary: "Add instead of subtract.",
      rootCause: "The arithmetic in add.sh used minus. It never added.",
      changes: "src/add.sh: use +",
      performance: "none",
    },
    git: {
      branch: "autofix/o-r-7",
      baseSha: "b".repeat(40),
      reproCommitSha: "c".repeat(40),
      fixCommitSha: "d".repeat(40),
      changedFiles: ["src/add.sh"],
    },
    usage: { ...usage, turns: 9 },
    model: "claude-sonnet-5",
    startedAt: "2026-11-24T10:00:00.000Z",
    durationMs: 120_000,
    transcript: [],
    ...over,
  };
}

function reportInput(over: Partial<ReportInput> = {}): ReportInput {
  return {
    runId: "job-1 (attempt 1/3)",
    origin: "comment trigger on o/r#7",
    request: {
      deterministic: true,
      prompt: "add.sh returns the wrong sum\n\nIssue #7",
      rawLogs: "expected 5, got -1",
    },
    logs: [
      {
        source: "raw logs",
        errorClass: "assertion-failure",
        failingTests: [],
        fingerprint: "0123456789ab",
        excerpt: "expected 5, got -1",
      },
    ],
    result: result(),
    pullRequest: { url: "https://github.com/o/r/pull/12", number: 12, created: true },
    pushed: { branch: "autofix/o-r-7", sha: "d".repeat(40) },
    workflows: [{ workflow: "unit", because: "the workflow that failed" }],
    owners: ["@alice"],
    authors: ["Bob"],
    startedAt: new Date("2026-11-24T10:00:00Z"),
    finishedAt: new Date("2026-11-24T10:02:05Z"),
    environment: { pool: "cpu" },
    ...over,
  };
}

describe("the report", () => {
  it("has the original layout and the evidence", () => {
    const md = renderReport(reportInput());
    const headings = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual([
      "Summary",
      "Input Configuration",
      "Reproduction",
      "Root Cause Analysis",
      "Fix Implementation",
      "Stability Runs",
      "Pull Request",
      "Performance Impact",
      "Next Steps",
      "Relevant Developers",
      "Technical Details",
      "Execution Timeline",
    ]);
    expect(md).toContain("- **Status:** Success");
    expect(md).toContain("- **Duration:** 2m 05s");
    expect(md).toContain("- **Run id:** job-1 (attempt 1/3)");
    expect(md).toContain("| 1 | refused | 1/2 passed | run 2 failed (exit 1) |");
    expect(md).toContain("| 2 | accepted | 2/2 passed | 2/2 passed |");
    expect(md).toContain("| before: base commit | 2/2 runs failed (reproduced) |");
    expect(md).toContain("- opened: https://github.com/o/r/pull/12");
  });

  it("names the file after the start time and the prompt", () => {
    expect(reportFileName(new Date("2026-02-04T16:30:00Z"), "Gather times out on wide tensors!\nmore")).toBe(
      "2026-02-04_16-30-00_gather-times-out-on-wide-tensors.md",
    );
  });

  it("reports partial and failed runs with what to do next", () => {
    const localSuccess = renderReport(reportInput({ pullRequest: null, pushed: null }));
    expect(localSuccess).toContain("The proven fix is on the local branch `autofix/o-r-7`");
    expect(localSuccess).not.toContain("Review the draft PR");
    const partial = reportInput({
      result: result({ status: "partial", fix: null }),
      pullRequest: null,
      pushed: null,
    });
    expect(reportStatus(partial)).toBe("partial");
    expect(renderReport(partial)).toContain("No fix passed every gate");
    const none = reportInput({
      result: null,
      pullRequest: null,
      pushed: null,
      problem: "a GitHub token is needed to read the logs",
    });
    expect(reportStatus(none)).toBe("failed");
    expect(renderReport(none)).toContain("a GitHub token is needed to read the logs");
    const unpublished = reportInput({
      pullRequest: null,
      pushed: null,
      problem: "the fix was proven but could not be published: refused",
    });
    expect(reportStatus(unpublished)).toBe("partial");
    expect(reportDigest(unpublished)).toContain("Problem: the fix was proven but could not be published");
  });
});

describe("the report's diff", () => {
  it("shows the proven change as a diff a reviewer reads, clipped and redacted", () => {
    const diff = "--- a/src/add.sh\n+++ b/src/add.sh\n-echo $(( $1 - $2 ))\n+echo $(( $1 + $2 ))\n";
    const md = renderReport(reportInput({ fixDiff: diff }));
    expect(md).toContain("The change:");
    expect(md).toContain("```diff\n--- a/src/add.sh");
    expect(md).toContain("+echo $(( $1 + $2 ))");
    const token = `ghp_${"Q".repeat(36)}`;
    expect(renderReport(reportInput({ fixDiff: `+TOKEN=${token}\n` }))).not.toContain(token);
    const long = Array.from({ length: 250 }, (_, i) => `+line ${i}`).join("\n");
    expect(clipDiff(long).split("\n")).toHaveLength(201);
    expect(clipDiff(long)).toMatch(/\.\.\. 50 more lines/);
    expect(renderReport(reportInput())).not.toContain("The change:");
  });
});

describe("the draft PR", () => {
  it("has a title from the summary and every section a reviewer needs", () => {
    const r = result();
    expect(prTitle(r)).toBe("Autofix: Add instead of subtract");
    const body = renderPrBody({
      job: { requestedBy: "alice" },
      result: r,
      workflows: [{ workflow: "unit", because: "the workflow that failed" }],
      owners: ["@org/team"],
      authors: ["Bob"],
      testFiles: [{ path: "autofix-tests/o-r-7/run_test.sh", content: "bash tests/test_add.sh\n" }],
    });
    for (const h of [
      "Summary",
      "Root Cause",
      "Changes",
      "Evidence",
      "Performance Impact",
      "Recommended CI Workflows",
      "Relevant Developers",
    ]) {
      expect(body).toContain(`## ${h}`);
    }
    expect(body).toContain("| after: with the fix | 2/2 runs passed (accepted) | 1s-2s |");
    expect(body).toContain("bash autofix-tests/o-r-7/run_test.sh");
    expect(body).toContain(
      "<summary>Reproduction test (autofix-tests/o-r-7; kept out of this diff)</summary>",
    );
    expect(body).toContain("- Code owners: @org/team");
    expect(body).toContain("Draft opened by Autofix for a request by @alice.");
    const local = renderPrBody({ result: r, workflows: [], owners: [], authors: [], testFiles: [] });
    expect(local).toContain("Draft opened by Autofix for a local run (`autofix run`).");
    expect(local).not.toMatch(/@local/);
  });
});

describe("the status checklist", () => {
  it("follows the phases and ends every step", () => {
    const t = new ChecklistTracker(false);
    t.apply({ type: "phase_started", phase: "reproduce", budget: { minutes: 5, turns: 60 } });
    expect(t.steps.map((s) => s.state)).toEqual(["done", "running", "pending", "pending"]);
    t.apply({ type: "phase_ended", phase: "reproduce", outcome: result().phases[0]! });
    t.apply({ type: "phase_started", phase: "fix", budget: { minutes: 10, turns: 60 } });
    t.apply({ type: "gate_result", phase: "fix", result: result().phases[1]!.gates[0]! });
    expect(t.steps[2]).toMatchObject({ state: "running", detail: "gate refused: 1/2 passed" });
    t.apply({
      type: "phase_ended",
      phase: "fix",
      outcome: { ...result().phases[1]!, status: "failed", reason: "no fix passed" },
    });
    t.finish(false);
    expect(t.steps.map((s) => s.state)).toEqual(["done", "done", "failed", "skipped"]);
  });
});

describe("checklist changes", () => {
  const states = (steps: StatusStep[]) => steps.map((s) => s.state);

  it("start a step (with a detail, or keeping its own), without changing the list given", () => {
    const steps = defaultSteps();
    const started = startStep(steps, 0, "workspace at abc1234");
    expect(started[0]).toEqual({
      name: "Prepare workspace and logs",
      state: "running",
      detail: "workspace at abc1234",
    });
    expect(states(steps)).toEqual(["pending", "pending", "pending", "pending"]);
    const skipped = defaultSteps(true);
    expect(startStep(skipped, 1)[1]).toEqual({ ...skipped[1], state: "running" });
  });

  it("settle running steps: failed at a final state, pending back in the queue, done when the next one starts", () => {
    const mid = startStep(startStep(defaultSteps(true), 0), 2);
    expect(states(settleSteps(mid, "failed"))).toEqual(["failed", "skipped", "failed", "pending"]);
    expect(states(settleSteps(mid, "pending"))).toEqual(["pending", "skipped", "pending", "pending"]);
    expect(states(settleSteps(mid, "done"))).toEqual(["done", "skipped", "done", "pending"]);
    expect(states(mid)).toEqual(["running", "skipped", "running", "pending"]);
  });

  it("end a run: running steps done or failed, the rest not reached", () => {
    const mid = startStep(defaultSteps(), 1).map((s, i) => (i === 0 ? { ...s, state: "done" as const } : s));
    expect(endSteps(mid, true).map((s) => [s.state, s.detail])).toEqual([
      ["done", undefined],
      ["done", undefined],
      ["skipped", "not reached"],
      ["skipped", "not reached"],
    ]);
    expect(states(endSteps(mid, false))).toEqual(["done", "failed", "skipped", "skipped"]);
  });

  it("the tracker hands out a new list on every change, never one it changes later", () => {
    const t = new ChecklistTracker(false);
    const first = t.steps;
    t.apply({ type: "phase_started", phase: "reproduce", budget: { minutes: 5, turns: 60 } });
    t.publishing();
    expect(states(first)).toEqual(["running", "pending", "pending", "pending"]);
    expect(states(t.steps)).toEqual(["done", "done", "pending", "running"]);
    t.finish(true, "opened #3");
    expect(t.steps.map((s) => [s.state, s.detail ?? ""])).toEqual([
      ["done", ""],
      ["done", "budget 5 min, 60 turns"],
      ["skipped", "not reached"],
      ["done", "opened #3"],
    ]);
  });
});

describe("next steps of a local run (autofix run) and of the worker", () => {
  const steps = (md: string) => md.split("## Next Steps\n\n")[1]!.split("\n\n## ")[0]!;
  const local = (over: Partial<ReportInput> = {}) =>
    reportInput({
      origin: "local run (autofix run) in /home/me/repo",
      environment: { mode: LOCAL_RUN_MODE },
      pullRequest: null,
      pushed: null,
      workflows: [],
      ...over,
    });
  const commentOptions = /\/autofix retry|--pool|--flaky/;

  it("every outcome of a local run gives commands for this machine, no comment options", () => {
    const partial = result({ status: "partial", fix: null, git: { ...result().git, fixCommitSha: null } });
    const cases: Array<[string, Partial<ReportInput>]> = [
      ["succeeded", {}],
      ["partial", { result: partial }],
      ["cancelled", { result: result({ status: "cancelled" }) }],
      ["timed_out", { result: result({ status: "timed_out" }) }],
      ["failed", { result: result({ status: "failed", reproduction: null }) }],
      ["failed before the agent", { result: null, problem: "bad logs" }],
    ];
    for (const [name, over] of cases) {
      const text = steps(renderReport(local(over)));
      expect(text, name).not.toMatch(commentOptions);
    }
    expect(steps(renderReport(local({ result: partial })))).toContain(
      "Run `autofix run` again with a sharper prompt",
    );
    expect(
      steps(renderReport(local({ result: result({ status: "failed", reproduction: null }) }))),
    ).toContain("Run `autofix run` again with a sharper prompt");
    expect(steps(renderReport(local({ result: result({ status: "cancelled" }) })))).toContain(
      "`autofix run`",
    );
  });

  it("a local proven fix: the branch, autofix prove, and no workflows advice when there are none", () => {
    const text = steps(renderReport(local()));
    expect(text).toContain("The proven fix is on the local branch `autofix/o-r-7`");
    expect(text).toContain("`autofix prove autofix/o-r-7`");
    expect(text).not.toContain("recommended CI workflows");
    const withWorkflows = steps(
      renderReport(local({ workflows: [{ workflow: "unit", because: "the workflow that failed" }] })),
    );
    expect(withWorkflows).toContain("Run the recommended CI workflows on it before review.");
  });

  it("a local partial result shows a command that runs the test kept in the repro ref", () => {
    const partial = result({ status: "partial", fix: null, git: { ...result().git, fixCommitSha: null } });
    expect(steps(renderReport(local({ result: partial })))).toContain(
      "run it with `git worktree add --detach /tmp/autofix-repro-autofix-o-r-7 refs/autofix-repro/autofix/o-r-7 && (cd /tmp/autofix-repro-autofix-o-r-7 && bash autofix-tests/o-r-7/run_test.sh); git worktree remove --force /tmp/autofix-repro-autofix-o-r-7`",
    );
  });

  it("`local: true` wins over the environment; the worker's reports keep the comment advice", () => {
    const explicit = steps(
      renderReport(reportInput({ local: true, result: result({ status: "cancelled" }) })),
    );
    expect(explicit).not.toMatch(commentOptions);
    const worker = (status: AgentResult["status"]) =>
      steps(renderReport(reportInput({ result: result({ status, reproduction: null }) })));
    expect(worker("cancelled")).toContain("`/autofix retry`");
    expect(worker("failed")).toContain("try `--pool` or `--flaky`");
    expect(isLocalRun(reportInput())).toBe(false);
    expect(isLocalRun(local())).toBe(true);
    expect(isLocalRun(local({ local: false }))).toBe(false);
  });
});
