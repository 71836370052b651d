import { Redis } from "ioredis";
import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseCommand } from "../../src/triggers/command.js";
import { decisionEntry, renderWhy } from "../../src/triggers/decisions.js";
import { examplePayload, nockInstallationToken } from "../helpers/github.js";
import { TEST_REDIS_URL } from "../helpers/redis.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";
import {
  closedPrPayload,
  commentPayload,
  completeRun,
  failing,
  finishJobs,
  type LoopGitHub,
  loopGitHub,
  passing,
} from "./loop-github.js";

describe("/autofix why answers from the recorded decisions (through the webhook)", () => {
  let h: TriggerHarness;
  let gh: LoopGitHub;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    gh = loopGitHub({ config: "failure_threshold: 1\n" });
    gh.state.permissions.set("maintainer", "admin");
  });
  afterEach(async () => {
    await h.close();
  });

  async function why(issue: number): Promise<string> {
    await h.deliver("issue_comment", commentPayload(issue, "/autofix why"));
    return gh.commentsOn(issue).at(-1)!;
  }

  /** Take the queued job as a worker would and end it with a result, as the lifecycle does. */
  async function endJob(result: { state: string; message: string }): Promise<string> {
    const [queued] = await h.jobs();
    const { Worker } = await import("bullmq");
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const w = new Worker(queued!.pool, null as never, {
      connection,
      prefix: h.deps.settings.AUTOFIX_QUEUE_PREFIX,
      autorun: false,
    });
    try {
      const job = await w.getNextJob("token-why");
      await job!.moveToCompleted(result, "token-why", false);
      return job!.id!;
    } finally {
      await w.close(true);
      connection.disconnect();
    }
  }

  it("the loop breaker case: streaks and threshold, the infra run not counted, each job, the limit, and how the last job ended", async () => {
    let run = 0;
    for (let n = 0; n < 3; n++) {
      await completeRun(h, gh, ++run, [failing()]);
      if (n < 2) await finishJobs(h);
      else await endJob({ state: "partial", message: "Reproduced, but no fix passed every gate." });
      await completeRun(h, gh, ++run, [passing]);
    }
    await completeRun(h, gh, ++run, [{ ...failing(), step: "Set up runner" }]); // infrastructure
    await completeRun(h, gh, ++run, [failing()]);
    expect(await h.jobs()).toHaveLength(0);

    const tracking = gh.state.issues[0]!.number;
    const answer = await why(tracking);
    expect(answer).toContain("Why Autofix did (or did not) act here, from its recorded decisions");
    expect(answer).toContain(
      "**streak**: run #1: ttnn unit tests (N300) failed 1 consecutive runs (threshold 1): threshold reached",
    );
    expect(answer).toMatch(
      /\*\*infra\*\*: run #7 \(attempt 1\): ttnn unit tests \(N300\) failed on infrastructure .*not counted/,
    );
    expect(answer.match(/\*\*job\*\*: automatic job `[^`]+` queued on pool n300/g)).toHaveLength(3);
    expect(answer).toContain(
      "**loop breaker**: 3 automatic jobs already ran for this failure within 7 days (limits.jobs_per_fingerprint: 3)",
    );
    expect(answer).toMatch(/Last job `[^`]+`: partial \(Reproduced, but no fix passed every gate\.\)\./);
  });

  it("the closed-PR case, and the person who asked again", async () => {
    await completeRun(h, gh, 1, [failing()]);
    await finishJobs(h);
    const tracking = gh.state.issues[0]!.number;
    const pr = gh.addFixPr(tracking, "f".repeat(40), "<!-- autofix:pr -->");
    await h.deliver("pull_request", closedPrPayload(pr, false));
    await completeRun(h, gh, 2, [passing]);
    await completeRun(h, gh, 3, [failing()]);
    let answer = await why(tracking);
    expect(answer).toContain(
      `**loop breaker**: Autofix PR #${pr.number} was closed without merging by \`@maintainer\`: automatic jobs for this failure are blocked until a person asks again`,
    );
    expect(answer).toContain(
      `**loop breaker**: Autofix PR #${pr.number} for this failure was closed without merging`,
    );

    await h.deliver("issue_comment", commentPayload(tracking, "/autofix"));
    answer = await why(tracking);
    expect(answer).toMatch(
      /\*\*trigger\*\*: `\/autofix` comment by `@maintainer`: permission checked \(write or better\), job `[^`]+` queued on pool cpu/,
    );
    expect(answer).toContain(
      "**loop breaker**: `@maintainer` asked again: automatic jobs for this failure may start again",
    );
    expect(answer).toMatch(/Last job `[^`]+`: waiting\./);
  });

  it("the people's-work case", async () => {
    gh.state.search.push({
      number: 77,
      title: "Fix the matmul hang",
      user: { login: "dev", type: "User" },
      pull_request: { url: "x" },
    });
    await completeRun(h, gh, 1, [failing()]);
    const answer = await why(gh.state.issues[0]!.number);
    expect(answer).toContain("**people's work**: open work by others references this failure: #77");
    expect(answer).not.toContain("**job**");
  });

  it("the CI-on-the-fix case", async () => {
    await completeRun(h, gh, 1, [failing()]);
    const tracking = gh.state.issues[0]!.number;
    const sha = "ab".repeat(20);
    const pr = gh.addFixPr(tracking, sha, "<!-- autofix:pr -->\n## Performance Impact\n");
    gh.state.checkRuns.set(sha, [
      { name: "unit (N300)", status: "completed", conclusion: "success" },
      { name: "models (N300)", status: "completed", conclusion: "timed_out" },
    ]);
    const p = examplePayload("check_suite", "completed");
    p.check_suite.head_branch = pr.head.ref;
    p.check_suite.head_sha = sha;
    p.check_suite.pull_requests = [];
    await h.deliver("check_suite", p);
    const answer = await why(tracking);
    // Asked on the fix PR itself, the answer is its target's.
    expect(await why(pr.number)).toContain("**CI on the fix**: CI on the fix:");
    expect(answer).toContain(
      `**CI on the fix**: CI on the fix: ❌ 1 of 2 failed on N300: \`models (N300)\` (timed_out) (PR #${pr.number}, commit abababab`,
    );
  });

  it("the permission case, and an issue with nothing recorded", async () => {
    const issue = 42;
    expect(await why(issue)).toContain("Autofix has recorded no decision for this issue or pull request");
    await h.deliver("issue_comment", commentPayload(issue, "/autofix fix it", "reader"));
    const answer = await why(issue);
    expect(answer).toContain(
      "**permission**: `/autofix` comment by `@reader`: refused, no write access (role read)",
    );
  });
});

describe("why (pure)", () => {
  it("is a command only on its own; with more words it is a prompt", () => {
    expect(parseCommand("/autofix why")).toEqual({ kind: "why" });
    expect(parseCommand("/autofix why does it hang")).toMatchObject({
      kind: "run",
      prompt: "why does it hang",
    });
  });

  it("records are redacted data, one line each", () => {
    const e = decisionEntry(
      "trigger",
      `token ghp_${"a".repeat(36)}\nsecond line`,
      new Date("2026-11-24T10:00:00Z"),
    );
    expect(e.text).not.toContain("ghp_");
    expect(e.text).not.toContain("\n");
    expect(renderWhy([e])).toContain("- 2026-11-24 10:00:00Z · **trigger**: token");
  });
});
