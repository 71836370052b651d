import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  API,
  examplePayload,
  nockInstallationToken,
  nockPermission,
  nockRepoConfig,
} from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";

const SHA = "c0ffee".padEnd(40, "0");

/** The real issue_comment.created example, with a body of our choosing. */
function commentPayload(body: string, opts: { login?: string; type?: string; pr?: boolean } = {}) {
  const p = examplePayload("issue_comment", "created");
  p.comment.body = body;
  p.repository.default_branch = "main";
  if (opts.login) {
    p.sender.login = opts.login;
    p.comment.user.login = opts.login;
  }
  if (opts.type) p.sender.type = opts.type;
  if (opts.pr) p.issue.pull_request = { url: "x", html_url: "x", diff_url: "x", patch_url: "x" };
  return p;
}

const OWNER = "Codertocat";
const REPO = "Hello-World";
const ISSUE = 1;

function nockAccepted(opts: { statusComments?: unknown[] } = {}) {
  const created: Array<{ body: string }> = [];
  nock(API)
    .post(
      `/repos/${OWNER}/${REPO}/issues/comments/${examplePayload("issue_comment", "created").comment.id}/reactions`,
      { content: "eyes" },
    )
    .reply(201, {});
  nock(API)
    .get(`/repos/${OWNER}/${REPO}/branches/main`)
    .reply(200, { name: "main", commit: { sha: SHA } });
  nock(API)
    .get(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`)
    .query(true)
    .reply(200, opts.statusComments ?? []);
  nock(API)
    .post(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, (b) => {
      created.push(b);
      return true;
    })
    .reply(201, { id: 9001 });
  return created;
}

function nockReply(): Array<{ body: string }> {
  const bodies: Array<{ body: string }> = [];
  nock(API)
    .post(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, (b) => {
      bodies.push(b);
      return true;
    })
    .reply(201, { id: 777 });
  return bodies;
}

describe("/autofix comments", () => {
  let h: TriggerHarness;
  beforeAll(() => {
    nock.disableNetConnect();
  });
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
  });
  afterEach(async () => {
    await h.close();
  });

  it("an admin's command queues one job at the issue's commit, reacts, and posts the queued status", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "Codertocat", "admin");
    const created = nockAccepted();
    await h.deliver(
      "issue_comment",
      commentPayload(
        "/autofix --flaky the gather op times out\nhttps://github.com/Codertocat/Hello-World/actions/runs/5/job/6",
      ),
    );
    const jobs = await h.jobs();
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(job.pool).toBe("cpu");
    expect(job.data).toMatchObject({
      source: "comment",
      repository: { owner: OWNER, name: REPO, installationId: 42, defaultBranch: "main" },
      target: { kind: "issue", number: ISSUE, headSha: SHA },
      request: { deterministic: false },
      requestedBy: "Codertocat",
      fingerprint: "target:codertocat/hello-world#1",
    });
    expect(job.data.request.prompt).toMatch(/^the gather op times out/);
    expect(created).toHaveLength(1);
    expect(created[0]!.body).toContain("<!-- autofix:status Codertocat/Hello-World#1 -->");
    expect(created[0]!.body).toContain("⏳ Queued");
    expect(created[0]!.body).toContain("position 1 in queue");
    expect(created[0]!.body).toContain("/autofix cancel");
    // The drainer records the status comment's id, so the worker edits the same comment.
    expect(await h.outbox.commentIdOf({ kind: "issue", owner: OWNER, repo: REPO, number: ISSUE })).toBe(9001);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "enqueued", pool: "cpu" });
    expect(nock.isDone()).toBe(true);
  });

  const matrix: Array<[string, string | number, boolean]> = [
    ["admin", "admin", true],
    ["maintain", "maintain", true],
    ["write", "write", true],
    ["triage", "triage", false],
    ["read", "read", false],
    ["none", "none", false],
  ];
  for (const [name, role, allowed] of matrix) {
    it(`permission ${name}: ${allowed ? "job" : "one short reply, no job"}`, async () => {
      nockRepoConfig(OWNER, REPO, null);
      nockPermission(OWNER, REPO, "dev1", role);
      const replies = allowed ? [] : nockReply();
      if (allowed) nockAccepted();
      await h.deliver("issue_comment", commentPayload("/autofix fix it", { login: "dev1" }));
      expect(await h.jobs()).toHaveLength(allowed ? 1 : 0);
      if (!allowed) {
        expect(replies).toHaveLength(1);
        expect(replies[0]!.body).toContain("@dev1 only people with write access");
        expect(h.decisions.at(-1)).toMatchObject({ decision: "unauthorized" });
      }
      expect(nock.isDone()).toBe(true);
    });
  }

  it("fails closed when GitHub refuses the permission lookup: no job, a reply, and an error log", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "dev2", 403);
    const replies = nockReply();
    await h.deliver("issue_comment", commentPayload("/autofix fix it", { login: "dev2" }));
    expect(await h.jobs()).toHaveLength(0);
    expect(replies[0]!.body).toMatch(/could not verify your permission/);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "unauthorized", detail: "lookup failed" });
  });

  it("a 502 on the permission lookup fails the delivery (503, redeliverable), queues nothing, and says so once", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "dev2", 502);
    const replies = nockReply();
    const delivered = h.deliver(
      "issue_comment",
      commentPayload("/autofix fix it", { login: "dev2" }),
      "d-502",
    );
    // Probot hands the handler's error on; its middleware answers the error's status (503).
    await expect(delivered).rejects.toMatchObject({ errors: [{ name: "GitHubUnavailable", status: 503 }] });
    expect(await h.jobs()).toHaveLength(0);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.body).toMatch(
      /@dev2 Autofix could not read what it needs from GitHub just now \(GitHub answered 502 to GET \/repos\/Codertocat\/Hello-World\/collaborators\/dev2\/permission\), so nothing was queued/,
    );
    // No decision is recorded for a failed delivery: GitHub shows it as failed.
    expect(h.decisions).toHaveLength(0);
  });

  it("ignores bots silently, whatever author_association says", async () => {
    nockRepoConfig(OWNER, REPO, null);
    const p = commentPayload("/autofix fix it", { login: "dependabot[bot]", type: "Bot" });
    p.comment.author_association = "OWNER";
    await h.deliver("issue_comment", p);
    expect(await h.jobs()).toHaveLength(0);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "ignored", detail: "bot not in allowed_bots" });
    expect(nock.isDone()).toBe(true);
  });

  it("accepts a bot listed in allowed_bots (with or without the [bot] suffix)", async () => {
    nockRepoConfig(OWNER, REPO, "allowed_bots: [ci-helper]\n");
    nockAccepted();
    await h.deliver(
      "issue_comment",
      commentPayload("/autofix fix it", { login: "ci-helper[bot]", type: "Bot" }),
    );
    expect(await h.jobs()).toHaveLength(1);
  });

  it("does not see commands in code blocks, quotes, HTML comments or mid-line, and makes no API call", async () => {
    for (const body of [
      "```\n/autofix fix it\n```",
      "> /autofix fix it",
      "<!-- /autofix fix it -->",
      "please run /autofix later",
      "    /autofix indented code",
    ]) {
      await h.deliver("issue_comment", commentPayload(body));
    }
    expect(await h.jobs()).toHaveLength(0);
    expect(h.decisions.map((d) => d.detail)).toEqual(Array(5).fill("no command"));
  });

  it("never reacts to edited comments or to its own comments", async () => {
    const edited = examplePayload("issue_comment", "edited");
    edited.comment.body = "/autofix fix it";
    await h.deliver("issue_comment", edited);
    await h.deliver("issue_comment", commentPayload("<!-- autofix:reply -->\n/autofix fix it"));
    const viaApp = commentPayload("/autofix fix it");
    viaApp.comment.performed_via_github_app = { id: 1 };
    await h.deliver("issue_comment", viaApp);
    expect(await h.jobs()).toHaveLength(0);
    expect(h.decisions.map((d) => d.detail)).toEqual(["own comment", "own comment"]);
  });

  it("answers bad input with what was wrong and the usage, and queues nothing", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "Codertocat", "write");
    nock(API)
      .post(`/repos/${OWNER}/${REPO}/issues/comments/${commentPayload("").comment.id}/reactions`)
      .reply(201, {});
    const replies = nockReply();
    await h.deliver("issue_comment", commentPayload("/autofix --pool gpu fix it"));
    expect(await h.jobs()).toHaveLength(0);
    expect(replies[0]!.body).toContain("unknown pool `gpu`");
    expect(replies[0]!.body).toContain("/autofix [options] [what to fix]");
  });

  it("answers an invalid .github/autofix.yml with a comment quoting the error", async () => {
    nockRepoConfig(OWNER, REPO, "failure_threshold: many\n");
    nockPermission(OWNER, REPO, "Codertocat", "write");
    const replies = nockReply();
    await h.deliver("issue_comment", commentPayload("/autofix fix it"));
    expect(await h.jobs()).toHaveLength(0);
    expect(replies[0]!.body).toContain("`.github/autofix.yml` is invalid");
    expect(replies[0]!.body).toContain('`failure_threshold`: must be a number, got the string "many"');
  });

  it("processes the same webhook delivery once", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "Codertocat", "admin");
    nockAccepted();
    const p = commentPayload("/autofix fix it");
    await h.deliver("issue_comment", p, "same-delivery");
    await h.deliver("issue_comment", p, "same-delivery");
    expect(await h.jobs()).toHaveLength(1);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "ignored", detail: "duplicate delivery" });
  });

  it("ten concurrent triggers for one issue make one job; the others get a link to it", async () => {
    nock(API).persist().get(`/repos/${OWNER}/${REPO}/contents/.github%2Fautofix.yml`).reply(404, {});
    nock(API).persist().get(`/repos/${OWNER}/.github/contents/.github%2Fautofix.yml`).reply(404, {});
    nock(API)
      .persist()
      .get(`/repos/${OWNER}/${REPO}/collaborators/Codertocat/permission`)
      .reply(200, { permission: "admin", role_name: "admin" });
    nock(API)
      .persist()
      .post(/\/reactions$/)
      .reply(201, {});
    nock(API)
      .persist()
      .get(`/repos/${OWNER}/${REPO}/branches/main`)
      .reply(200, { commit: { sha: SHA } });
    nock(API).persist().get(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`).query(true).reply(200, []);
    const posted: string[] = [];
    nock(API)
      .persist()
      .post(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`, (b) => {
        posted.push(b.body);
        return true;
      })
      .reply(201, { id: 1234 });
    await Promise.all(
      Array.from({ length: 10 }, () => h.receive("issue_comment", commentPayload("/autofix fix it"))),
    );
    await h.drain();
    expect(await h.jobs()).toHaveLength(1);
    expect(h.decisions.filter((d) => d.decision === "enqueued")).toHaveLength(1);
    expect(h.decisions.filter((d) => d.decision === "duplicate")).toHaveLength(9);
    expect(posted.filter((b) => b.includes("already"))).toHaveLength(9);
  });

  it("a PR comment works on the pull request's head commit", async () => {
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, "Codertocat", "write");
    nock(API)
      .post(/\/reactions$/)
      .reply(201, {});
    const prSha = "beef".padEnd(40, "1");
    nock(API)
      .get(`/repos/${OWNER}/${REPO}/pulls/${ISSUE}`)
      .reply(200, { head: { sha: prSha, ref: "feature" } });
    nock(API).get(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`).query(true).reply(200, []);
    nock(API).post(`/repos/${OWNER}/${REPO}/issues/${ISSUE}/comments`).reply(201, { id: 5 });
    await h.deliver("issue_comment", commentPayload("/autofix fix it", { pr: true }));
    const [job] = await h.jobs();
    expect(job?.data.target).toEqual({
      kind: "pull_request",
      number: ISSUE,
      headSha: prSha,
      headRef: "feature",
    });
  });
});
