import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseFixJob } from "../../src/contracts/fix-job.js";
import { statusTargetOf } from "../../src/status/index.js";
import { locationOf } from "../../src/status/outbox/index.js";
import { pushIntent } from "../../src/triggers/on-push.js";
import {
  API,
  examplePayload,
  nockInstallationToken,
  nockPermission,
  nockRepoConfig,
} from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";

const OWNER = "Codertocat";
const REPO = "Hello-World";
const SHA = "c0ffee".padEnd(40, "7");
const INFO = ".github/autofix/info.json";
const ORIGINAL = ".github/scripts/codebase-improvements/info.json";

const VALID = {
  deterministic: false,
  url: "https://github.com/Codertocat/Hello-World/actions/runs/55/job/66",
  prompt: "Reduce scatter occasionally hangs on T3K. Find and fix the race.\u200b",
  "raw-logs": "",
  "existing-test-path": "",
};

/** A push of `branch` whose head commit touches `changed` (GitHub's real payload, adjusted). */
function pushPayload(opts: { branch?: string; changed?: string[]; added?: boolean; sha?: string } = {}) {
  const p = examplePayload("push", undefined as unknown as string, 4);
  const sha = opts.sha ?? SHA;
  p.ref = `refs/heads/${opts.branch ?? "ask-autofix"}`;
  p.after = sha;
  p.deleted = false;
  p.head_commit.id = sha;
  p.head_commit.added = opts.added ? (opts.changed ?? [INFO]) : [];
  p.head_commit.modified = opts.added ? [] : (opts.changed ?? [INFO]);
  p.head_commit.removed = [];
  p.repository.default_branch = "main";
  return p;
}

/** The file at the commit, as the contents API answers. */
function nockInfo(path: string, content: unknown, sha = SHA, extra: Record<string, unknown> = {}) {
  const text = typeof content === "string" ? content : JSON.stringify(content, null, 2);
  nock(API)
    .get(`/repos/${OWNER}/${REPO}/contents/${encodeURIComponent(path)}`)
    .query({ ref: sha })
    .reply(200, {
      type: "file",
      path,
      size: Buffer.byteLength(text),
      encoding: "base64",
      content: Buffer.from(text).toString("base64"),
      ...extra,
    });
}

/** Commit comments on the commit: what a person sees there, in order. */
function nockCommitComments(sha = SHA) {
  const posted: string[] = [];
  nock(API)
    .persist()
    .get(`/repos/${OWNER}/${REPO}/commits/${sha}/comments`)
    .query(true)
    .reply(200, () => []);
  nock(API)
    .persist()
    .post(`/repos/${OWNER}/${REPO}/commits/${sha}/comments`, (b) => {
      posted.push(b.body);
      return true;
    })
    .reply(201, () => ({ id: 7000 + posted.length }));
  nock(API)
    .persist()
    .patch(/\/repos\/Codertocat\/Hello-World\/comments\/\d+$/, (b) => {
      posted.push(b.body);
      return true;
    })
    .reply(200, { id: 7001 });
  return posted;
}

describe("the push trigger", () => {
  let h: TriggerHarness;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
  });
  afterEach(async () => h.close());

  it("a write user's push of .github/autofix/info.json: one job on that commit and a queued status on the commit", async () => {
    const p = pushPayload();
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, p.sender.login, "write");
    nockInfo(INFO, VALID);
    const posted = nockCommitComments();
    await h.deliver("push", p);

    expect(h.decisions.at(-1)).toMatchObject({ event: "push", decision: "enqueued", pool: "cpu" });
    const jobs = await h.jobs();
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!.data;
    expect(parseFixJob(job).ok).toBe(true);
    expect(job).toMatchObject({
      source: "push",
      target: { kind: "commit", headSha: SHA, headRef: "ask-autofix", infoPath: INFO },
      request: { deterministic: false, url: VALID.url },
      requestedBy: p.sender.login,
      fingerprint: `commit:codertocat/hello-world@${SHA}`,
    });
    expect(job.target.number).toBeUndefined();
    // The request is the file's, with hidden characters stripped.
    expect(job.request.prompt).toBe("Reduce scatter occasionally hangs on T3K. Find and fix the race.");
    // Its status lives on the commit, under the same contract (marker, one comment).
    expect(locationOf(statusTargetOf(job))).toEqual({ kind: "commit", owner: OWNER, repo: REPO, sha: SHA });
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain(`<!-- autofix:status ${OWNER}/${REPO}@${SHA} -->`);
    expect(posted[0]).toContain("Queued");
    expect(posted[0]).toContain(`push of \`${INFO}\` to \`ask-autofix\``);
    // Commit comments take no commands: the footer does not offer any.
    expect(posted[0]).toContain("Started by a pushed info.json; this commit comment takes no commands.");
    expect(posted[0]).not.toContain("/autofix cancel");
  });

  it("the original framework's path works too, and the same commit pushed again starts no second job", async () => {
    const p = pushPayload({ changed: [ORIGINAL, "README.md"], added: true });
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, p.sender.login, "admin");
    nockInfo(ORIGINAL, { ...VALID, deterministic: true, url: "", "raw-logs": "E   RuntimeError: TT_THROW" });
    const posted = nockCommitComments();
    await h.deliver("push", p);
    expect(await h.jobs()).toHaveLength(1);
    expect((await h.jobs())[0]!.data.request).toMatchObject({
      deterministic: true,
      rawLogs: "E   RuntimeError: TT_THROW",
    });

    // The same commit on another branch (a second delivery): the job already queued is kept.
    const again = pushPayload({ branch: "ask-autofix-2", changed: [ORIGINAL], added: true });
    nockRepoConfig(OWNER, REPO, null);
    nockInfo(ORIGINAL, { ...VALID, deterministic: true, url: "", "raw-logs": "E   RuntimeError: TT_THROW" });
    await h.deliver("push", again);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "duplicate" });
    expect(await h.jobs()).toHaveLength(1);
    expect(posted.filter((b) => b.includes("autofix:status"))).toHaveLength(1);
    // The duplicate's reply links the job and offers no command a commit comment cannot take.
    const duplicateReply = posted.find((b) => b.includes("A job for this is already"));
    expect(duplicateReply).toBeDefined();
    expect(duplicateReply).not.toContain("/autofix cancel");
  });

  it("an invalid info.json gets its problems in a commit comment, and nothing runs", async () => {
    const p = pushPayload();
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, p.sender.login, "write");
    nockInfo(INFO, {
      deterministic: "true",
      prompt: "",
      url: "",
      "raw-logs": "",
      "existing-test-path": "../../../etc/passwd",
      Existing_Test_Path: "x",
    });
    const posted = nockCommitComments();
    await h.deliver("push", p);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "invalid-command" });
    expect(await h.jobs()).toHaveLength(0);
    expect(posted).toHaveLength(1);
    const body = posted[0]!;
    expect(body).toContain(`Autofix did not run: \`${INFO}\` at ${SHA.slice(0, 7)} is not a valid request.`);
    expect(body).toContain('"deterministic" must be true or false without quotes');
    expect(body).toContain('"prompt" is required');
    expect(body).toContain('give a log source: "url"');
    expect(body).toContain(
      '"existing-test-path" must be a path relative to the repository\'s root, inside it',
    );
    expect(body).toContain('did you mean "existing-test-path"?');
    expect(body).not.toContain("autofix:status");
  });

  it("a file that is not JSON, a link instead of a file, or an oversized file: the reason, and nothing runs", async () => {
    for (const [content, extra, expected] of [
      ["{ deterministic: true", {}, "is not valid JSON"],
      ["", { type: "symlink", target: "/etc/shadow" }, "must be a regular file (it is a symlink)"],
      [JSON.stringify({ ...VALID, "raw-logs": "x".repeat(300 * 1024) }), {}, "is larger than 256 KB"],
    ] as const) {
      const sha = `${"ab".repeat(19)}${String(posts.length).padStart(2, "0")}`;
      posts.push(sha);
      const p = pushPayload({ sha });
      nockRepoConfig(OWNER, REPO, null);
      nockPermission(OWNER, REPO, p.sender.login, "write");
      nockInfo(INFO, content, sha, extra);
      const posted = nockCommitComments(sha);
      await h.deliver("push", p);
      expect(posted.join("\n")).toContain(expected);
    }
    expect(await h.jobs()).toHaveLength(0);
  });
  const posts: string[] = [];

  it("a push by a read-only user: nothing, not even a comment", async () => {
    const p = pushPayload();
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, p.sender.login, "read");
    const posted = nockCommitComments();
    await h.deliver("push", p);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "unauthorized" });
    expect(await h.jobs()).toHaveLength(0);
    expect(posted).toEqual([]);
  });

  it("a push by a bot not in allowed_bots: nothing, and its permission is not even looked up", async () => {
    const p = pushPayload();
    p.sender = { ...p.sender, login: "dependabot[bot]", type: "Bot" };
    nockRepoConfig(OWNER, REPO, null);
    const posted = nockCommitComments();
    await h.deliver("push", p);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "ignored", detail: "bot not in allowed_bots" });
    expect(await h.jobs()).toHaveLength(0);
    expect(posted).toEqual([]);
  });

  it("the app's own branches and commits, tags, deleted branches and other files: nothing is read or written", async () => {
    // No nock for the config, the permission or the file: any GitHub call fails the delivery.
    const own = pushPayload({ branch: "autofix/codertocat-hello-world-12" });
    const ownCommit = pushPayload();
    ownCommit.head_commit.committer.email = "autofix@users.noreply.github.com";
    const tag = pushPayload();
    tag.ref = "refs/tags/v1.0";
    const deleted = pushPayload();
    deleted.deleted = true;
    deleted.after = "0".repeat(40);
    deleted.head_commit = null;
    const other = pushPayload({ changed: ["src/add.sh", "docs/info.md"] });
    for (const p of [own, ownCommit, tag, deleted, other]) await h.deliver("push", p);
    expect(h.decisions.map((d) => d.detail)).toEqual([
      "the app's own branch",
      "the app's own commit",
      "not a branch (refs/tags/v1.0)",
      "branch deleted",
      "no .json file changed",
    ]);
    expect(h.decisions.every((d) => d.decision === "ignored")).toBe(true);
    expect(await h.jobs()).toHaveLength(0);
  });

  it("info_json_paths in .github/autofix.yml decides which files count", async () => {
    const p = pushPayload({ changed: [INFO] });
    nockRepoConfig(OWNER, REPO, "info_json_paths: [ci/autofix-request.json]\n");
    await h.deliver("push", p);
    expect(h.decisions.at(-1)).toMatchObject({
      decision: "ignored",
      detail: "no configured info.json changed",
    });

    const custom = pushPayload({ changed: ["ci/autofix-request.json"] });
    nockRepoConfig(OWNER, REPO, "info_json_paths: [ci/autofix-request.json]\ndefault_pool: n150\n");
    nockPermission(OWNER, REPO, custom.sender.login, "maintain");
    nockInfo("ci/autofix-request.json", VALID);
    nockCommitComments();
    await h.deliver("push", custom);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "enqueued", pool: "n150" });
    expect((await h.jobs())[0]!.data.target.infoPath).toBe("ci/autofix-request.json");
  });

  it("GitHub failing to answer the permission lookup fails the delivery (redeliverable) and queues nothing", async () => {
    const p = pushPayload();
    nockRepoConfig(OWNER, REPO, null);
    nockPermission(OWNER, REPO, p.sender.login, 502);
    await expect(h.deliver("push", p)).rejects.toThrow();
    expect(await h.jobs()).toHaveLength(0);
  });
});

describe("pushIntent", () => {
  it("needs the head commit to be the pushed tip", () => {
    const p = pushPayload();
    p.head_commit.id = "f".repeat(40);
    expect(pushIntent(p as never)).toEqual({ kind: "ignore", why: "head commit is not the pushed tip" });
    expect(pushIntent(pushPayload() as never)).toMatchObject({
      kind: "candidate",
      branch: "ask-autofix",
      sha: SHA,
    });
  });
});
