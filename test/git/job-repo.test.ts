import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { remoteGitOk } from "../../src/git/remote.js";
import { WorkspaceManager } from "../../src/worker/workspace.js";
import { makeRemote } from "../worker/helpers/git-fixture.js";

/**
 * A job works in a repository of its own that borrows the mirror's objects. What a hostile
 * model writes into that `.git` (hooks, fsmonitor, aliases, config) must never run in the
 * service's own git, nor reach the mirror or the next job.
 */

const repo = { owner: "acme", name: "widget" };

function plant(dir: string, marker: string): void {
  const hook = join(dir, ".git", "hooks", "post-checkout");
  writeFileSync(hook, `#!/bin/sh\necho hook >> ${marker}\n`);
  chmodSync(hook, 0o755);
  const fsmonitor = join(dir, ".git", "fsmon.sh");
  writeFileSync(fsmonitor, `#!/bin/sh\necho fsmonitor >> ${marker}\n`);
  chmodSync(fsmonitor, 0o755);
  writeFileSync(
    join(dir, ".git", "config"),
    `${readFileSync(join(dir, ".git", "config"), "utf8")}[core]\n\tfsmonitor = ${fsmonitor}\n\thooksPath = .git/hooks\n[alias]\n\tstatus = !echo alias >> ${marker}\n`,
  );
}

describe("the job's own repository", () => {
  it("hooks and config planted by job A neither run in the service's git nor reach the mirror or job B", async () => {
    const remote = makeRemote();
    const sha = remote.commit("a.txt", "one\n");
    const m = new WorkspaceManager({
      workDir: mkdtempSync(join(tmpdir(), "autofix-jobrepo-")),
      remote: remote.base,
    });
    const marker = join(mkdtempSync(join(tmpdir(), "autofix-marker-")), "ran");

    const a = await m.prepare({ repo, sha, baseBranch: "main", id: "job-a" });
    expect(readFileSync(join(a.dir, ".git", "objects", "info", "alternates"), "utf8").trim()).toBe(
      join(m.mirrorDir(repo), "objects"),
    );
    const mirrorConfig = readFileSync(join(m.mirrorDir(repo), "config"), "utf8");
    const mirrorLoose = readdirSync(join(m.mirrorDir(repo), "objects")).sort();
    plant(a.dir, marker);
    // The job commits something of its own: the objects land in the job's repository only.
    writeFileSync(join(a.dir, "b.txt"), "model\n");
    execFileSync("git", ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "add", "b.txt"], {
      cwd: a.dir,
    });
    // The service's git in the job's repository ignores what was planted.
    await remoteGitOk(["status", "--porcelain"], { cwd: a.dir, helperPath: m.helperPath });
    await remoteGitOk(["checkout", "--quiet", "--detach", sha], { cwd: a.dir, helperPath: m.helperPath });
    await m.remove(a);

    const b = await m.prepare({ repo, sha, baseBranch: "main", id: "job-b" });
    await remoteGitOk(["status", "--porcelain"], { cwd: b.dir, helperPath: m.helperPath });
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(join(b.dir, ".git", "config"), "utf8")).not.toMatch(/fsmonitor|alias|hooksPath/);
    expect(existsSync(join(b.dir, ".git", "hooks", "post-checkout"))).toBe(false);
    expect(existsSync(join(b.dir, "b.txt"))).toBe(false);
    expect(readFileSync(join(m.mirrorDir(repo), "config"), "utf8")).toBe(mirrorConfig);
    expect(readdirSync(join(m.mirrorDir(repo), "objects")).sort()).toEqual(mirrorLoose);
    await m.remove(b);
  });
});
