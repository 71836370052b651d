import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BRANCH_PREFIX, branchNameFor, PushRefusedError, pushBranch } from "../../src/publish/push.js";
import { WorkspaceManager } from "../../src/worker/workspace.js";
import { makeRemote, sh } from "./helpers/git-fixture.js";

const APP = "123+autofix[bot]@users.noreply.github.com";
const appEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "autofix[bot]",
  GIT_AUTHOR_EMAIL: APP,
  GIT_COMMITTER_NAME: "autofix[bot]",
  GIT_COMMITTER_EMAIL: APP,
};

describe("branchNameFor", () => {
  it("is deterministic per target and a safe ref name", () => {
    expect(branchNameFor({ owner: "Tenstorrent", repo: "tt-metal", number: 42 })).toBe(
      "autofix/tenstorrent-tt-metal-42",
    );
    expect(branchNameFor({ owner: "a", repo: "x..y.lock", number: 1 })).toBe("autofix/a-x.y.lock-1");
    expect(branchNameFor({ owner: "a", repo: "weird name!", number: 7 })).toBe("autofix/a-weird-name-7");
  });
});

async function setup() {
  const remote = makeRemote();
  const base = remote.commit("a.txt", "base\n");
  const m = new WorkspaceManager({
    workDir: mkdtempSync(join(tmpdir(), "autofix-work-")),
    remote: remote.base,
  });
  const ws = await m.prepare({
    repo: { owner: "acme", name: "widget" },
    sha: base,
    baseBranch: "main",
    id: "p",
  });
  const commitInWs = (content: string) => {
    writeFileSync(join(ws.dir, "a.txt"), content);
    sh(ws.dir, ["commit", "-qam", "fix"], appEnv);
    return sh(ws.dir, ["rev-parse", "HEAD"]);
  };
  const url = m.remoteUrl({ owner: "acme", name: "widget" });
  const branch = branchNameFor({ owner: "acme", repo: "widget", number: 5 });
  const push = (extra: Partial<Parameters<typeof pushBranch>[0]> = {}) =>
    pushBranch({
      workspace: ws.dir,
      remoteUrl: url,
      branch,
      helperPath: m.helperPath,
      appEmails: [APP],
      token: "ghs_x",
      ...extra,
    });
  const remoteTip = () => sh(remote.bare, ["rev-parse", `refs/heads/${branch}`]);
  return { remote, ws, commitInWs, push, remoteTip, branch };
}

describe("pushBranch", () => {
  it("creates, fast-forwards, replaces the app's own commits, and is idempotent", async () => {
    const s = await setup();
    const c1 = s.commitInWs("fix 1\n");
    expect(await s.push()).toMatchObject({ kind: "created", sha: c1, previous: null });
    expect(s.remoteTip()).toBe(c1);
    expect(await s.push()).toMatchObject({ kind: "up-to-date" });
    const c2 = s.commitInWs("fix 2\n");
    expect(await s.push()).toMatchObject({ kind: "fast-forward", previous: c1 });
    // A retry rebuilt the fix from the base: the old tip is the app's own, so it is replaced.
    sh(s.ws.dir, ["reset", "-q", "--hard", "HEAD~2"]);
    const c3 = s.commitInWs("fix 3\n");
    expect(await s.push()).toMatchObject({ kind: "replaced-own", previous: c2, sha: c3 });
    expect(s.remoteTip()).toBe(c3);
  });

  it("refuses to overwrite a commit a person added to the branch", async () => {
    const s = await setup();
    s.commitInWs("fix 1\n");
    await s.push();
    // A maintainer pushes a commit on top of the app's branch.
    sh(s.remote.clone, ["fetch", "-q", "origin", s.branch]);
    sh(s.remote.clone, ["checkout", "-q", "FETCH_HEAD"]);
    const human = s.remote.commit("human.txt", "mine\n", { branch: s.branch });
    sh(s.ws.dir, ["reset", "-q", "--hard", "HEAD~1"]);
    s.commitInWs("fix again\n");
    const err = await s.push().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PushRefusedError);
    expect((err as Error).message).toMatch(
      /refusing to overwrite autofix\/acme-widget-5: .*by dev@example.com/,
    );
    expect(s.remoteTip()).toBe(human);
    // The tip the app pushed last time is replaceable even without the app e-mails.
    await expect(s.push({ appEmails: [], previousPush: human })).resolves.toMatchObject({
      kind: "replaced-own",
    });
  });

  it("only pushes to the app's own branch prefix", async () => {
    const s = await setup();
    await expect(s.push({ branch: "main" })).rejects.toThrow(new RegExp(`only to ${BRANCH_PREFIX}`));
  });
});
