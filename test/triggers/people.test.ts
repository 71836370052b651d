import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isOwnItem, peopleSearchQuery } from "../../src/publish/people.js";
import { nockInstallationToken } from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";
import { completeRun, FULL, failing, type LoopGitHub, loopGitHub, TEST_ID } from "./loop-github.js";

describe("automatic jobs do not race people's work (through the webhook)", () => {
  let h: TriggerHarness;
  let gh: LoopGitHub;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    gh = loopGitHub({ config: "failure_threshold: 1\n" });
  });
  afterEach(async () => {
    await h.close();
  });

  it("an open human PR naming the failing test stops the automatic job, and the tracking issue links it", async () => {
    gh.state.search.push({
      number: 77,
      title: "Fix the matmul hang in test_matmul_2d",
      body: `This fixes ${TEST_ID}`,
      user: { login: "dev", type: "User" },
      pull_request: { url: "x" },
    });
    await completeRun(h, gh, 1, [failing()]);

    expect(await h.jobs()).toHaveLength(0);
    // One bounded search in the repository, for the exact test id among the open items.
    expect(gh.state.searches).toHaveLength(1);
    expect(gh.state.searches[0]).toContain(`repo:${FULL} is:open`);
    expect(gh.state.searches[0]).toContain(`"${TEST_ID}"`);
    const tracking = gh.state.issues[0]!.number;
    const said = gh.commentsOn(tracking).join("\n");
    expect(said).toContain(
      "open work by others already references `" + TEST_ID + "`, and Autofix does not race it",
    );
    expect(said).toContain("- PR #77 by **dev**: `Fix the matmul hang in test_matmul_2d`");
    // Nobody is pinged for having fixed things first.
    expect(said).not.toContain("@dev");

    // The next failing run of the same streak says nothing new.
    const count = gh.commentsOn(tracking).length;
    await completeRun(h, gh, 2, [failing()]);
    expect(await h.jobs()).toHaveLength(0);
    expect(gh.commentsOn(tracking)).toHaveLength(count);

    // The PR is closed: the streak goes on, and now a job starts.
    gh.state.search.length = 0;
    await completeRun(h, gh, 3, [failing()]);
    expect(await h.jobs()).toHaveLength(1);
  });

  it("a bot's issue counts (bots are people here), the app's own PR and tracking issue do not", async () => {
    gh.state.search.push({
      number: 501, // the tracking issue itself (created first, so it gets 501)
      title: "Autofix: ... fails repeatedly",
      body: "<!-- autofix:tracking x -->",
      user: { login: "autofix[bot]", type: "Bot" },
    });
    gh.state.search.push({
      number: 640,
      title: "Autofix: stop the hang",
      body: "<!-- autofix:pr -->\n> Draft opened by Autofix",
      user: { login: "autofix[bot]", type: "Bot" },
      pull_request: { url: "x" },
    });
    await completeRun(h, gh, 1, [failing()]);
    expect(await h.jobs()).toHaveLength(1);

    await h.jobs().then(async (js) => {
      for (const j of js) await (await h.queues.queue(j.pool).getJob(j.id))?.remove();
    });
    gh.state.search.push({
      number: 88,
      title: `Flaky: ${TEST_ID}`,
      body: "seen again",
      user: { login: "flaky-bot[bot]", type: "Bot" },
    });
    await completeRun(h, gh, 2, [{ name: "ttnn unit tests (N300)", conclusion: "success" }]);
    await completeRun(h, gh, 3, [failing()]);
    expect(await h.jobs()).toHaveLength(0);
    expect(gh.commentsOn(gh.state.issues[0]!.number).join("\n")).toContain(
      "- issue #88 by **flaky-bot[bot]**",
    );
  });

  it("a failed search does not stop the job (it is a courtesy, not a control)", async () => {
    gh.state.searchStatus = 500;
    gh.state.search.push({ number: 77, title: "x", user: { login: "dev", type: "User" } });
    await completeRun(h, gh, 1, [failing()]);
    expect(await h.jobs()).toHaveLength(1);
  });
});

describe("the people search (pure)", () => {
  it("quotes exact phrases, drops quotes and short terms, and stays in the repository", () => {
    expect(peopleSearchQuery({ owner: "o", repo: "r", terms: ['tests/a.py::t["x"]', "", "#5", "a"] })).toBe(
      'repo:o/r is:open "tests/a.py::t[ x ]" OR "#5"',
    );
    expect(peopleSearchQuery({ owner: "o", repo: "r", terms: [""] })).toBeNull();
  });

  it("knows the app's own items by its app id or by a bot's Autofix marker, not by a person quoting it", () => {
    expect(isOwnItem({ number: 1, title: "", html_url: "", performed_via_github_app: { id: 7 } }, "7")).toBe(
      true,
    );
    expect(
      isOwnItem({
        number: 1,
        title: "",
        html_url: "",
        body: "<!-- autofix:pr -->",
        user: { login: "dev", type: "User" },
      }),
    ).toBe(false);
  });
});
