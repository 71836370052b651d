import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loopDecision } from "../../src/triggers/loop-breakers.js";
import { targetOfBranch } from "../../src/triggers/on-pr-closed.js";
import { nockInstallationToken } from "../helpers/github.js";
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

const CONFIG = "failure_threshold: 1\n";
const CODEOWNERS = "* @org/everyone\ntests/ttnn/ @org/ttnn-owners @alice\n";

describe("loop breakers of automatic jobs (through the webhook)", () => {
  let h: TriggerHarness;
  let gh: LoopGitHub;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    gh = loopGitHub({ config: CONFIG, codeowners: CODEOWNERS });
    gh.state.permissions.set("maintainer", "admin");
  });
  afterEach(async () => {
    await h.close();
  });

  /** One streak of the failure: a failing run (a job starts, or not), then the job ends and CI passes. */
  async function streak(n: number): Promise<number> {
    await completeRun(h, gh, 2 * n - 1, [failing()]);
    const started = (await h.jobs()).length;
    await finishJobs(h);
    await completeRun(h, gh, 2 * n, [passing]);
    return started;
  }

  it("the fourth automatic trigger of a fingerprint within the window starts nothing and says why on the tracking issue, mentioning the test's owners", async () => {
    expect(await streak(1)).toBe(1);
    expect(await streak(2)).toBe(1);
    expect(await streak(3)).toBe(1);
    expect(gh.state.issues).toHaveLength(1);
    const tracking = gh.state.issues[0]!.number;
    const before = gh.commentsOn(tracking).length;

    expect(await streak(4)).toBe(0);
    const said = gh.commentsOn(tracking).slice(before);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("Autofix did not start another automatic job for **ttnn unit tests (N300)**");
    expect(said[0]).toContain(
      "3 automatic jobs already ran for this failure within 7 days (limits.jobs_per_fingerprint: 3)",
    );
    // CODEOWNERS of the failing test's path (the last matching rule), not of the whole repository.
    expect(said[0]).toContain("@alice @org/ttnn-owners: you own `tests/ttnn/unit_tests/test_matmul.py`");
    expect(said[0]).not.toContain("@org/everyone");

    // The next streak within the window: still nothing, and no second notice.
    expect(await streak(5)).toBe(0);
    expect(gh.commentsOn(tracking).slice(before)).toHaveLength(1);
  });

  it("the limit is a setting: limits.jobs_per_fingerprint 1 stops the second automatic job", async () => {
    gh.state.config = "failure_threshold: 1\nlimits:\n  jobs_per_fingerprint: 1\n  window_days: 2\n";
    expect(await streak(1)).toBe(1);
    expect(await streak(2)).toBe(0);
    const tracking = gh.state.issues[0]!.number;
    expect(gh.commentsOn(tracking).join("\n")).toContain(
      "1 automatic jobs already ran for this failure within 2 days (limits.jobs_per_fingerprint: 1)",
    );
  });

  it("too many open Autofix PRs in the repository pause automatic jobs", async () => {
    gh.state.config = "failure_threshold: 1\nlimits:\n  open_prs: 2\n";
    gh.addFixPr(11, "1".repeat(40), "<!-- autofix:pr -->");
    gh.addFixPr(12, "2".repeat(40), "<!-- autofix:pr -->");
    // A person's PR on an autofix/ branch is not the app's: it does not count.
    gh.state.pulls.push({
      number: 90,
      head: { ref: "autofix/my-own-idea", sha: "3".repeat(40) },
      body: "<!-- autofix:pr --> (quoted by a person)",
      user: { login: "dev", type: "User" },
      state: "open",
      html_url: "https://github.com/x/y/pull/90",
    });
    expect(await streak(1)).toBe(0);
    const tracking = gh.state.issues[0]!.number;
    expect(gh.commentsOn(tracking).join("\n")).toContain(
      "2 Autofix PRs are open in this repository (#600, #601; limits.open_prs: 2)",
    );
  });

  it("a closed, unmerged Autofix PR blocks the next automatic job until a person asks again", async () => {
    expect(await streak(1)).toBe(1);
    const tracking = gh.state.issues[0]!.number;
    const pr = gh.addFixPr(tracking, "f".repeat(40), "<!-- autofix:pr -->");
    await h.deliver("pull_request", closedPrPayload(pr, false));

    expect(await streak(2)).toBe(0);
    expect(gh.commentsOn(tracking).join("\n")).toContain(
      `Autofix PR #${pr.number} for this failure was closed without merging by maintainer (2026-11-24): no new automatic job starts for it until a person asks again`,
    );
    expect(await streak(3)).toBe(0);

    // A person asks on the tracking issue: their job runs, and automatic jobs may start again.
    await h.deliver("issue_comment", commentPayload(tracking, "/autofix"));
    const mine = await h.jobs();
    expect(mine).toHaveLength(1);
    expect(mine[0]!.data.source).toBe("comment");
    await finishJobs(h);
    expect(await streak(4)).toBe(1);
  });

  it("a merged Autofix PR blocks nothing", async () => {
    expect(await streak(1)).toBe(1);
    const tracking = gh.state.issues[0]!.number;
    const pr = gh.addFixPr(tracking, "f".repeat(40), "<!-- autofix:pr -->");
    await h.deliver("pull_request", closedPrPayload(pr, true));
    expect(await streak(2)).toBe(1);
  });
});

describe("loop breaker decisions (pure)", () => {
  const now = new Date("2026-11-24T10:00:00Z");
  const limits = { jobsPerFingerprint: 3, windowDays: 7, openPrs: 5 };
  const daysAgo = (d: number) => new Date(now.getTime() - d * 24 * 3600 * 1000);

  it("counts only the starts inside the window", () => {
    const starts = [daysAgo(8), daysAgo(6), daysAgo(3), daysAgo(1)];
    expect(loopDecision({ now, limits, starts, openPrs: [], blockedBy: null })).toMatchObject({
      allowed: false,
      rule: "per-fingerprint",
    });
    expect(
      loopDecision({ now, limits, starts: starts.slice(0, 3), openPrs: [], blockedBy: null }),
    ).toMatchObject({
      allowed: true,
    });
  });

  it("a closed PR wins over the other rules and names who closed it", () => {
    const d = loopDecision({
      now,
      limits,
      starts: [],
      openPrs: [],
      blockedBy: { pr: 7, closedAt: "2026-11-20T00:00:00Z", by: "bob" },
    });
    expect(d).toMatchObject({ allowed: false, rule: "closed-pr" });
    expect(d.text).toContain("#7");
    expect(d.text).toContain("by bob");
  });

  it("maps only the app's own branch names back to a target", () => {
    const repo = { owner: "Codertocat", repo: "Hello-World" };
    expect(targetOfBranch(repo, "autofix/codertocat-hello-world-501")).toEqual({ ...repo, number: 501 });
    expect(targetOfBranch(repo, "autofix/someone-else-501")).toBeNull();
    expect(targetOfBranch(repo, "autofix/codertocat-hello-world-x")).toBeNull();
  });
});
