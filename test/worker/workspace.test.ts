import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CREDENTIAL_HELPER_SCRIPT, credentialArgs, GIT_TOKEN_ENV, gitEnv } from "../../src/git/remote.js";
import {
  repoRemoteUrl,
  WorkspaceManager,
  worktreeName,
  worktreeOwnerPid,
} from "../../src/worker/workspace.js";
import { makeRemote, sh } from "./helpers/git-fixture.js";

const repo = { owner: "acme", name: "widget" };

function manager(base: string, workDir = mkdtempSync(join(tmpdir(), "autofix-work-"))) {
  return new WorkspaceManager({ workDir, remote: base });
}

describe("WorkspaceManager", () => {
  it("checks out the exact commit; a second job reuses the mirror with an incremental fetch", async () => {
    const remote = makeRemote();
    const first = remote.commit("a.txt", "one\n");
    const second = remote.commit("a.txt", "two\n");
    const m = manager(remote.base);

    const ws1 = await m.prepare({ repo, sha: first, baseBranch: "main", id: "job1" });
    expect(readFileSync(join(ws1.dir, "a.txt"), "utf8")).toBe("one\n");
    expect(sh(ws1.dir, ["rev-parse", "HEAD"])).toBe(first);
    const mirror = m.mirrorDir(repo);
    expect(mirror).toBe(join(m.workDir, "mirrors", "acme", "widget.git"));
    const inode = statSync(mirror).ino;
    const packs = readdirSync(join(mirror, "objects", "pack"));
    await m.remove(ws1);
    expect(existsSync(ws1.dir)).toBe(false);

    const third = remote.commit("b.txt", "three\n");
    const ws2 = await m.prepare({ repo, sha: third, baseBranch: "main", id: "job2" });
    expect(sh(ws2.dir, ["rev-parse", "HEAD"])).toBe(third);
    expect(readFileSync(join(ws2.dir, "b.txt"), "utf8")).toBe("three\n");
    // Same mirror (not re-created), the first fetch's objects kept, one fetch per new commit.
    expect(statSync(mirror).ino).toBe(inode);
    for (const p of packs) expect(existsSync(join(mirror, "objects", "pack", p))).toBe(true);
    expect(m.stats).toMatchObject({ mirrorsCreated: 1, fetches: 2, worktrees: 2 });

    // A commit already in the mirror needs no fetch at all.
    const ws3 = await m.prepare({ repo, sha: second, baseBranch: "main", id: "job3" });
    expect(readFileSync(join(ws3.dir, "a.txt"), "utf8")).toBe("two\n");
    expect(m.stats.fetches).toBe(2);
    await m.remove(ws2);
    await m.remove(ws3);
    expect(sh(mirror, ["worktree", "list"]).split("\n")).toHaveLength(1);
    // The token never lands in the mirror's config.
    expect(readFileSync(join(mirror, "config"), "utf8")).not.toMatch(/token|password|helper/i);
  });

  it("fails clearly for a commit the remote does not have", async () => {
    const remote = makeRemote();
    remote.commit("a.txt", "x\n");
    const m = manager(remote.base);
    await expect(m.prepare({ repo, sha: "0".repeat(40), baseBranch: "main", id: "j" })).rejects.toThrow(
      /commit 0{40} is not on acme\/widget/,
    );
    expect(existsSync(m.worktreesDir) ? readdirSync(m.worktreesDir) : []).toEqual([]);
  });

  it("removes leftovers of a dead worker on start and keeps those of live ones", async () => {
    const remote = makeRemote();
    const sha = remote.commit("a.txt", "x\n");
    const workDir = mkdtempSync(join(tmpdir(), "autofix-work-"));
    const crashed = new WorkspaceManager({ workDir, remote: remote.base });
    const ws = await crashed.prepare({ repo, sha, baseBranch: "main", id: "crashed" });
    // Pretend the worktree belonged to a process that is gone, and another to a live one.
    const deadName = worktreeName(999_999, "old");
    execFileSync("mv", [ws.dir, join(workDir, "workspaces", deadName)]);
    mkdirSync(join(workDir, "workspaces", worktreeName(1, "live")));
    const restarted = new WorkspaceManager({ workDir, remote: remote.base, isAlive: (pid) => pid === 1 });
    const removed = await restarted.cleanupStale();
    expect(removed).toEqual([join(workDir, "workspaces", deadName)]);
    expect(readdirSync(join(workDir, "workspaces"))).toEqual([worktreeName(1, "live")]);
    const mirror = restarted.mirrorDir(repo);
    expect(sh(mirror, ["worktree", "list"]).split("\n")).toHaveLength(1);
    expect(sh(mirror, ["for-each-ref", "refs/autofix/"])).toBe("");
    expect(worktreeOwnerPid(deadName)).toBe(999_999);
  });
});

describe("git credentials", () => {
  it("the token travels only in the environment, to a helper that answers only the remote it is for", () => {
    const token = `ghs_${"a".repeat(40)}`;
    const remote = "https://github.com/acme/widget.git";
    const env = gitEnv(
      { PATH: process.env.PATH, [GIT_TOKEN_ENV]: "stale", GIT_ASKPASS: "/x" },
      token,
      remote,
    );
    expect(env[GIT_TOKEN_ENV]).toBe(token);
    expect(env.GIT_ASKPASS).toBeUndefined();
    expect(env.GIT_TERMINAL_PROMPT).toBe("0");
    // Without the remote it is for, the token is not offered at all.
    expect(gitEnv({ PATH: process.env.PATH }, token)[GIT_TOKEN_ENV]).toBeUndefined();
    const args = credentialArgs("/work dir/bin/helper");
    expect(args.join(" ")).not.toContain(token);
    expect(args).toEqual([
      "-c",
      "credential.helper=",
      "-c",
      "credential.helper=!'/work dir/bin/helper'",
      "-c",
      "credential.useHttpPath=true",
    ]);
    const ask = (input: string, op = "get") =>
      execFileSync("sh", ["-c", CREDENTIAL_HELPER_SCRIPT, "helper", op], { env, input, encoding: "utf8" });
    expect(ask("protocol=https\nhost=github.com\npath=acme/widget.git\n\n")).toBe(
      `username=x-access-token\npassword=${token}\n`,
    );
    expect(ask("protocol=https\nhost=github.com\npath=acme/widget\n\n")).toContain(token);
    // Any other host, path or protocol gets nothing: a redirected remote cannot collect the token.
    expect(ask("protocol=https\nhost=evil.example\npath=acme/widget.git\n\n")).toBe("");
    expect(ask("protocol=https\nhost=github.com\npath=attacker/loot.git\n\n")).toBe("");
    expect(ask("protocol=http\nhost=github.com\npath=acme/widget.git\n\n")).toBe("");
    expect(ask("protocol=https\nhost=github.com\n\n")).toBe("");
    expect(ask("protocol=https\nhost=github.com\npath=acme/widget.git\n\n", "store")).toBe("");
    expect(repoRemoteUrl("https://github.com/", repo)).toBe("https://github.com/acme/widget.git");
  });
});
