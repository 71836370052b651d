import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ciHeadline, summarizeChecks } from "../../src/publish/evidence.js";
import { CI_SECTION_END, CI_SECTION_START, ciSection } from "../../src/publish/pr-body.js";
import { examplePayload, nockInstallationToken } from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";
import { FULL, type LoopGitHub, type LoopPull, loopGitHub } from "./loop-github.js";

const TRACKING = 501;
const SHA = "f1".repeat(20);

/** A fix PR body as the pipeline opens it: the CI section waiting, between its markers. */
const PR_BODY = [
  "<!-- autofix:pr -->",
  "## Evidence",
  "| check | result | run time |",
  "",
  ciSection(null),
  "",
  "## Performance Impact",
  "_Not measured._",
].join("\n");

const STATUS = [
  `<!-- autofix:status ${FULL}#${TRACKING} -->`,
  "### Autofix · ✅ Succeeded: draft PR ready for review",
  "",
  "[Draft PR](https://github.com/x)",
  "",
  "<sub>Comment `/autofix retry` to run it again. Job `7` · updated 2026-11-24T10:00:00.000Z</sub>",
].join("\n");

function checkRunPayload(pr: LoopPull, sha = pr.head.sha) {
  const p = examplePayload("check_run", "completed");
  p.check_run.head_sha = sha;
  p.check_run.check_suite.head_branch = pr.head.ref;
  p.check_run.check_suite.head_sha = sha;
  p.check_run.pull_requests = [{ number: pr.number, head: { ref: pr.head.ref, sha } }];
  return p;
}

describe("CI on the fix (check_run.completed through the webhook)", () => {
  let h: TriggerHarness;
  let gh: LoopGitHub;
  let pr: LoopPull;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    gh = loopGitHub();
    pr = gh.addFixPr(TRACKING, SHA, PR_BODY);
    gh.state.comments.push({ id: 4242, issue: TRACKING, body: STATUS, bot: true });
  });
  afterEach(async () => {
    await h.close();
  });

  it("writes the fix commit's check runs into the PR's evidence and the status comment as they finish, failures included", async () => {
    gh.state.checkRuns.set(SHA, [
      { name: "build (N300)", status: "completed", conclusion: "success" },
      { name: "ttnn unit tests (N300)", status: "completed", conclusion: "success" },
      { name: "models (N300)", status: "in_progress", conclusion: null },
    ]);
    await h.deliver("check_run", checkRunPayload(pr));

    expect(pr.body).toContain("**2/3 passed so far on N300, 1 still running**");
    expect(pr.body).toContain("| `models (N300)` | ⏳ running");
    // The section is replaced in place: once, between its markers, before the next heading.
    expect(pr.body.split(CI_SECTION_START)).toHaveLength(2);
    expect(pr.body.indexOf(CI_SECTION_END)).toBeLessThan(pr.body.indexOf("## Performance Impact"));
    const status = gh.state.comments.find((c) => c.id === 4242)!.body;
    expect(status).toContain("**CI on the fix: 2/3 passed so far on N300, 1 still running**");
    expect(status.indexOf("CI on the fix")).toBeLessThan(status.indexOf("<sub>"));

    gh.state.checkRuns.set(SHA, [
      { name: "build (N300)", status: "completed", conclusion: "success" },
      { name: "ttnn unit tests (N300)", status: "completed", conclusion: "success" },
      { name: "models (N300)", status: "completed", conclusion: "failure" },
    ]);
    await h.deliver("check_run", checkRunPayload(pr));
    expect(pr.body).toContain("**❌ 1 of 3 failed on N300: `models (N300)` (failure)**");
    expect(pr.body).toContain("| `models (N300)` | ❌ failure ([details](https://github.com/");
    expect(pr.body).not.toContain("still running");
    const final = gh.state.comments.find((c) => c.id === 4242)!.body;
    expect(final).toContain(
      "**CI on the fix: ❌ 1 of 3 failed on N300: `models (N300)` (failure)** (all checks finished",
    );
    expect(final.split("CI on the fix")).toHaveLength(2); // replaced, not appended

    // The same results again (another check event): no new write.
    const patches = gh.state.prPatches.length;
    await h.deliver("check_run", checkRunPayload(pr));
    expect(gh.state.prPatches).toHaveLength(patches);
  });

  it("checks of an older commit of the branch change nothing", async () => {
    gh.state.checkRuns.set("0".repeat(40), [{ name: "build", status: "completed", conclusion: "failure" }]);
    await h.deliver("check_run", checkRunPayload(pr, "0".repeat(40)));
    expect(gh.state.prPatches).toHaveLength(0);
    expect(pr.body).toBe(PR_BODY);
  });

  it("all green on the fix: 12/12 passed", async () => {
    gh.state.checkRuns.set(
      SHA,
      Array.from({ length: 12 }, (_, i) => ({
        name: `t3k test ${i}`,
        status: "completed",
        conclusion: "success",
      })),
    );
    const p = examplePayload("check_suite", "completed");
    p.check_suite.head_branch = pr.head.ref;
    p.check_suite.head_sha = SHA;
    p.check_suite.pull_requests = [];
    await h.deliver("check_suite", p);
    expect(pr.body).toContain("**✅ 12/12 passed on T3K**");
    expect(gh.state.comments.find((c) => c.id === 4242)!.body).toContain(
      "CI on the fix: ✅ 12/12 passed on T3K",
    );
  });

  it("a branch that is not the app's, or a PR someone else opened on it, is left alone", async () => {
    const mine = { ...pr, user: { login: "dev", type: "User" }, number: 700 };
    gh.state.pulls.length = 0;
    gh.state.pulls.push(mine);
    gh.state.checkRuns.set(SHA, [{ name: "build", status: "completed", conclusion: "success" }]);
    await h.deliver("check_run", checkRunPayload(mine));
    expect(gh.state.prPatches).toHaveLength(0);
    const other = checkRunPayload(pr);
    other.check_run.check_suite.head_branch = "feature/x";
    await h.deliver("check_run", other);
    expect(gh.state.prPatches).toHaveLength(0);
  });

  it("dispatches the configured workflows that do not run on push on the fix branch, once per commit", async () => {
    gh.state.config = "ci_on_fix:\n  dispatch: [t3000-unit-tests.yaml]\n";
    const p = examplePayload("pull_request", "opened");
    p.pull_request.number = pr.number;
    p.pull_request.body = PR_BODY;
    p.pull_request.user = { ...p.pull_request.user, login: "autofix[bot]", type: "Bot" };
    p.pull_request.head = { ...p.pull_request.head, ref: pr.head.ref, sha: SHA, repo: { ...p.repository } };
    await h.deliver("pull_request", p);
    expect(gh.state.dispatches).toEqual([{ workflow: "t3000-unit-tests.yaml", ref: pr.head.ref }]);
    await h.deliver("pull_request", p);
    expect(gh.state.dispatches).toHaveLength(1);
  });
});

describe("CI summary (pure)", () => {
  it("skipped and neutral checks do not count; cancelled is not a pass", () => {
    const s = summarizeChecks(
      [
        { name: "a (N150)", status: "completed", conclusion: "success" },
        { name: "b", status: "completed", conclusion: "skipped" },
        { name: "c", status: "completed", conclusion: "cancelled" },
      ],
      ["n150", "n300"],
    );
    expect(ciHeadline(s)).toBe("CI on the fix: ❌ 1 of 2 failed on N150: `c` (cancelled)");
    expect(s.skipped).toBe(1);
  });

  it("no check yet says so", () => {
    expect(ciHeadline(summarizeChecks([]))).toBe("CI on the fix: no check has run on the fix commit yet");
  });
});
