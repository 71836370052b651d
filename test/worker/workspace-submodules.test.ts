import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { borrowedObjectStores, createGateCheckout } from "../../src/agent/phases/checkout.js";
import { createJobRepo } from "../../src/git/job-repo.js";
import { checkoutSubmodulesFromStores, nestedObjectStores } from "../../src/git/submodule-checkout.js";
import { bwrapAvailable, createBwrapExecutor } from "../../src/sandbox/bwrap.js";
import { createHostExecutor } from "../../src/sandbox/host.js";
import { buildCacheDir, WorkspaceManager } from "../../src/worker/workspace.js";

/**
 * A complete workspace: recursive submodules at the exact recorded commits (each from a mirror
 * of its own, fetched incrementally), LFS content, tags for `git describe`; hostile
 * `.gitmodules` refused; build caches per installation and repository.
 */

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Dev",
  GIT_AUTHOR_EMAIL: "dev@example.com",
  GIT_COMMITTER_NAME: "Dev",
  GIT_COMMITTER_EMAIL: "dev@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};
const git = (cwd: string, args: string[]) =>
  execFileSync("git", args, { cwd, env: ENV, encoding: "utf8" }).trim();
const lfsInstalled = spawnSync("git", ["lfs", "version"]).status === 0;

/** A bare remote `<root>/acme/<name>.git` with a clone to commit from. */
function repo(root: string, name: string) {
  const bare = join(root, "acme", `${name}.git`);
  mkdirSync(bare, { recursive: true });
  git(bare, ["init", "--quiet", "--bare", "--initial-branch=main"]);
  const clone = join(root, "clones", name);
  mkdirSync(clone, { recursive: true });
  git(clone, ["init", "--quiet", "--initial-branch=main"]);
  git(clone, ["remote", "add", "origin", bare]);
  return {
    bare,
    clone,
    write(file: string, text: string) {
      mkdirSync(join(clone, file, ".."), { recursive: true });
      writeFileSync(join(clone, file), text);
      git(clone, ["add", file]);
    },
    /** Record a gitlink (no clone of the submodule needed) and its .gitmodules entry. */
    link(path: string, url: string, sha: string) {
      const mods = existsSync(join(clone, ".gitmodules"))
        ? readFileSync(join(clone, ".gitmodules"), "utf8")
        : "";
      const entry = `[submodule "${path}"]\n\tpath = ${path}\n\turl = ${url}\n`;
      writeFileSync(join(clone, ".gitmodules"), mods.includes(`"${path}"`) ? mods : mods + entry);
      git(clone, ["add", ".gitmodules"]);
      git(clone, ["update-index", "--add", "--cacheinfo", `160000,${sha},${path}`]);
    },
    commit(msg: string) {
      git(clone, ["commit", "--quiet", "-m", msg]);
      git(clone, ["push", "--quiet", "origin", "HEAD:refs/heads/main", "--tags"]);
      return git(clone, ["rev-parse", "HEAD"]);
    },
  };
}

function fixture() {
  const root = mkdtempSync(join(tmpdir(), "autofix-subs-"));
  chmodSync(root, 0o755);
  const subsub = repo(root, "subsub");
  subsub.write("leaf.h", "#define LEAF 1\n");
  const leaf1 = subsub.commit("leaf 1");
  subsub.write("leaf.h", "#define LEAF 2\n");
  subsub.commit("leaf 2 (tip, not pinned)");

  const sub = repo(root, "sub");
  sub.write("sub.c", "int sub(void) { return 1; }\n");
  sub.link("deps/subsub", "../subsub.git", leaf1);
  const sub1 = sub.commit("sub 1");
  git(sub.clone, ["tag", "-a", "sub-v1", "-m", "sub v1"]);
  sub.write("sub.c", "int sub(void) { return 2; }\n");
  const sub2 = sub.commit("sub 2 (tip, not pinned at first)");

  const top = repo(root, "widget");
  top.write("main.c", "int main(void) { return 0; }\n");
  top.link("third_party/sub", "../sub.git", sub1);
  top.commit("widget 1");
  git(top.clone, ["tag", "-a", "v1.0", "-m", "release 1.0"]);
  top.write("main.c", "int main(void) { return 1; }\n");
  const top2 = top.commit("widget 2");
  return { root, base: `file://${root}`, top, sub, subsub, leaf1, sub1, sub2, top2 };
}

const acme = { owner: "acme", name: "widget" };

function manager(base: string, extra: Partial<ConstructorParameters<typeof WorkspaceManager>[0]> = {}) {
  const workDir = mkdtempSync(join(tmpdir(), "autofix-subs-work-"));
  chmodSync(workDir, 0o755);
  return new WorkspaceManager({ workDir, remote: base, ...extra });
}

const looseCount = (bare: string) => {
  const v = git(bare, ["count-objects", "-v"]);
  const n = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, "m").exec(v)?.[1] ?? 0);
  return n("count") + n("in-pack");
};

describe("complete workspaces", () => {
  it("checks out nested submodules at the recorded commits, with tags for git describe; the next job fetches only what is new", async () => {
    const f = fixture();
    const m = manager(f.base);
    const ws = await m.prepare({ repo: acme, sha: f.top2, baseBranch: "main", id: "job1" });

    // Complete at the exact commits, not the tips.
    expect(git(join(ws.dir, "third_party/sub"), ["rev-parse", "HEAD"])).toBe(f.sub1);
    expect(git(join(ws.dir, "third_party/sub/deps/subsub"), ["rev-parse", "HEAD"])).toBe(f.leaf1);
    expect(readFileSync(join(ws.dir, "third_party/sub/sub.c"), "utf8")).toContain("return 1");
    expect(readFileSync(join(ws.dir, "third_party/sub/deps/subsub/leaf.h"), "utf8")).toBe("#define LEAF 1\n");
    expect(ws.submodules?.map((s) => [s.path, s.commit])).toEqual([
      ["third_party/sub", f.sub1],
      ["third_party/sub/deps/subsub", f.leaf1],
    ]);
    // The superproject sees its submodules as clean and initialized.
    expect(git(ws.dir, ["status", "--porcelain"])).toBe("");
    const status = git(ws.dir, ["submodule", "status", "--recursive"]);
    expect(status).toContain(`${f.sub1} third_party/sub (sub-v1)`);
    expect(status).toContain(`${f.leaf1} third_party/sub/deps/subsub`);
    // Not "-" (uninitialized), "+" (another commit) or "U" (conflicts) in front of any.
    expect(status.split("\n").map((l) => l.trimStart()[0])).toEqual([f.sub1[0], f.leaf1[0]]);
    // `git describe` works in the superproject and in the submodule.
    expect(git(ws.dir, ["describe", "--tags"])).toMatch(/^v1\.0-1-g[0-9a-f]+$/);
    expect(git(join(ws.dir, "third_party/sub"), ["describe", "--tags"])).toBe("sub-v1");
    // Each submodule borrows from a mirror of its own, and the sandbox gets all object stores.
    expect(ws.objectStores).toHaveLength(3);
    for (const store of ws.objectStores ?? []) expect(existsSync(store)).toBe(true);
    expect(m.stats).toMatchObject({ submoduleMirrorsCreated: 2, submoduleFetches: 2 });
    const subMirror = m.submoduleMirrorDir("acme", `${f.base}/acme/sub.git`);
    expect(readdirSync(join(m.workDir, "submodules", "acme"))).toHaveLength(2);
    const subObjects = looseCount(subMirror);
    await m.remove(ws);

    // The superproject moves its sub pin to a newer commit: only that mirror fetches, and only the new objects.
    f.top.link("third_party/sub", "../sub.git", f.sub2);
    const top3 = f.top.commit("widget 3: bump sub");
    const ws2 = await m.prepare({ repo: acme, sha: top3, baseBranch: "main", id: "job2" });
    expect(git(join(ws2.dir, "third_party/sub"), ["rev-parse", "HEAD"])).toBe(f.sub2);
    expect(git(join(ws2.dir, "third_party/sub/deps/subsub"), ["rev-parse", "HEAD"])).toBe(f.leaf1);
    expect(m.stats).toMatchObject({ submoduleMirrorsCreated: 2, submoduleFetches: 3 });
    expect(ws2.submodules?.map((s) => s.fetched)).toEqual([true, false]);
    const added = looseCount(subMirror) - subObjects;
    // sub 2 is one commit, one tree and one blob on top of what the mirror had.
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThanOrEqual(3);

    // A third job at the same commits fetches nothing at all.
    const ws3 = await m.prepare({ repo: acme, sha: top3, baseBranch: "main", id: "job3" });
    expect(m.stats.submoduleFetches).toBe(3);
    await m.remove(ws2);
    await m.remove(ws3);
  });

  it.skipIf(!lfsInstalled)(
    "materializes LFS content through git-lfs, the files clean in git status",
    async () => {
      const f = fixture();
      const t = f.top;
      git(t.clone, ["config", "filter.lfs.process", "git-lfs filter-process"]);
      git(t.clone, ["config", "filter.lfs.clean", "git-lfs clean -- %f"]);
      git(t.clone, ["config", "filter.lfs.smudge", "git-lfs smudge -- %f"]);
      git(t.clone, ["config", "filter.lfs.required", "true"]);
      t.write(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
      const blob = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
      writeFileSync(join(t.clone, "weights.bin"), blob);
      git(t.clone, ["add", "weights.bin"]);
      const sha = t.commit("model weights in LFS");
      git(t.clone, ["lfs", "push", "--all", "origin"]);
      // The remote really holds a pointer, the content is in its LFS store.
      expect(git(t.bare, ["cat-file", "blob", `${sha}:weights.bin`])).toMatch(/^version https:\/\/git-lfs/);
      const m = manager(f.base);
      const ws = await m.prepare({ repo: acme, sha, baseBranch: "main", id: "lfs" });
      expect(readFileSync(join(ws.dir, "weights.bin")).equals(blob)).toBe(true);
      expect(ws.lfsFiles).toBe(1);
      // Kept in the mirror's LFS store for the next job, not in the job's repository alone.
      expect(readdirSync(join(m.mirrorDir(acme), "lfs", "objects"))).toHaveLength(1);
      expect(git(ws.dir, ["status", "--porcelain"])).toBe("");
      await m.remove(ws);
    },
  );

  it.runIf(!lfsInstalled)("says so when git-lfs is not installed (pointers left as they are)", () => {
    console.log("git-lfs is not installed here: the LFS materialization test is skipped");
  });

  it.each([
    ["file:///etc", /protocol file is not allowed/],
    ["ext::sh -c touch% MARKER", /whitespace|transport helpers/],
    ["../../../../../../etc", /climbs above/],
    ["--upload-pack=touch MARKER", /whitespace|option/],
    ["/etc", /not a URL/],
    ["ssh://localhost/acme/x.git", /protocol ssh/],
  ])("refuses a hostile submodule URL %j, fetching nothing", async (hostile, why) => {
    const f = fixture();
    const marker = join(mkdtempSync(join(tmpdir(), "autofix-marker-")), "ran");
    f.top.link("evil", hostile.replace("MARKER", marker), f.sub1);
    const sha = f.top.commit("hostile .gitmodules");
    const m = manager(f.base);
    await expect(m.prepare({ repo: acme, sha, baseBranch: "main", id: "evil" })).rejects.toThrow(why);
    expect(existsSync(marker)).toBe(false);
    // Only the submodule the tree had before was mirrored; nothing named by the hostile URL.
    const subs = existsSync(join(m.workDir, "submodules", "acme"))
      ? readdirSync(join(m.workDir, "submodules", "acme"))
      : [];
    expect(subs.every((s) => /^.*acme_sub(sub)?-[0-9a-f]{12}\.git$/.test(s))).toBe(true);
    // The failed workspace is removed.
    expect(readdirSync(m.worktreesDir)).toEqual([]);
  });

  it.each([[".git"], [".GIT"], [".."]])("refuses a crafted tree with a gitlink at %j", async (name) => {
    // git refuses to record such paths itself; a crafted tree pushed to a remote is not checked.
    const f = fixture();
    const mods = `[submodule "x"]\n\tpath = ${name}\n\turl = ../sub.git\n`;
    const blob = execFileSync("git", ["hash-object", "-w", "--stdin"], {
      cwd: f.top.bare,
      input: mods,
      encoding: "utf8",
    }).trim();
    const entries = git(f.top.bare, ["ls-tree", f.top2])
      .split("\n")
      .filter((l) => !l.endsWith("\t.gitmodules"));
    entries.push(`100644 blob ${blob}\t.gitmodules`, `160000 commit ${f.sub1}\t${name}`);
    const tree = execFileSync("git", ["mktree", "--missing"], {
      cwd: f.top.bare,
      input: `${entries.join("\n")}\n`,
      encoding: "utf8",
    }).trim();
    const sha = git(f.top.bare, ["commit-tree", tree, "-p", f.top2, "-m", "crafted"]);
    git(f.top.bare, ["update-ref", "refs/heads/main", sha]);
    const m = manager(f.base);
    await expect(m.prepare({ repo: acme, sha, baseBranch: "main", id: "crafted" })).rejects.toThrow(
      /unsafe submodule path|invalid path/,
    );
    expect(existsSync(join(m.workDir, "submodules", "acme"))).toBe(false);
    expect(readdirSync(m.worktreesDir)).toEqual([]);
    expect(existsSync(join(m.workDir, "sub.c"))).toBe(false);
  });
});

describe("build caches", () => {
  it("are per installation and repository, and mounted read-write into the job's sandbox only", async () => {
    const root = mkdtempSync(join(tmpdir(), "autofix-cache-"));
    chmodSync(root, 0o755);
    const a = buildCacheDir(root, 1, acme);
    expect(buildCacheDir(root, 2, acme)).not.toBe(a);
    expect(buildCacheDir(root, 1, { owner: "acme", name: "other" })).not.toBe(a);
    expect(buildCacheDir(root, 1, acme, "Release")).not.toBe(buildCacheDir(root, 1, acme, "Debug"));
    expect(() => buildCacheDir(root, 1, { owner: "..", name: "x" })).toThrow(/unsafe owner/);

    const f = fixture();
    // As root, the cache goes to the sandbox's uid (the bwrap backend runs commands as 65534).
    const owner = process.getuid?.() === 0 ? { owner: { uid: 65534, gid: 65534 } } : {};
    const m = manager(f.base, { buildCache: { root, maxSize: "2G", ...owner } });
    const ws1 = await m.prepare({ repo: acme, sha: f.top2, id: "c1", installationId: 1 });
    expect(ws1.cache?.reused).toMatch(/cold/);
    expect(ws1.cache?.env).toMatchObject({
      CCACHE_DIR: join(a, "ccache"),
      CCACHE_MAXSIZE: "2G",
      CCACHE_BASEDIR: ws1.dir,
    });
    const probe = await bwrapAvailable();
    if (probe.ok) {
      // A real sandbox writes the cache through the mount; the next job of the same repo sees it warm.
      const exec = createBwrapExecutor({
        workspace: ws1.dir,
        env: ws1.cache?.env ?? {},
        cards: [],
        jobId: "cache-test",
        readOnlyPaths: ws1.objectStores ?? [],
        cacheMounts: ws1.cache?.mounts ?? [],
      });
      const r = await exec.run('echo object > "$CCACHE_DIR/entry" && cat "$CCACHE_DIR/entry"');
      expect(r.output).toContain("object");
      expect(r.exitCode).toBe(0);
      await exec.dispose();
    } else {
      console.log(`bubblewrap not usable here (${probe.detail}): writing the cache from the host`);
      writeFileSync(join(a, "ccache", "entry"), "object\n");
    }
    await m.remove(ws1);
    const ws2 = await m.prepare({ repo: acme, sha: f.top2, id: "c2", installationId: 1 });
    expect(ws2.cache?.reused).toMatch(/warm \(used by 1 job before\)/);
    expect(readFileSync(join(ws2.cache?.dir ?? "", "ccache", "entry"), "utf8")).toBe("object\n");
    // Another installation with the same repository name starts cold, in another folder.
    const ws3 = await m.prepare({ repo: acme, sha: f.top2, id: "c3", installationId: 2 });
    expect(ws3.cache?.reused).toMatch(/cold/);
    expect(existsSync(join(ws3.cache?.dir ?? "", "ccache", "entry"))).toBe(false);
    // Without an installation id there is no cache at all (never a shared one).
    const ws4 = await m.prepare({ repo: acme, sha: f.top2, id: "c4" });
    expect(ws4.cache).toBeUndefined();
    for (const w of [ws2, ws3, ws4]) await m.remove(w);
  });
});

describe("build tree reuse", () => {
  it("moves the repository's build folder into its next job; make rebuilds only what changed", async () => {
    const f = fixture();
    const t = f.top;
    t.write(
      "Makefile",
      "build/%.o: %.c\n\t@mkdir -p build\n\tcc -c $< -o $@ && echo built $@ >> build/log\nall: build/main.o build/other.o\n",
    );
    t.write("other.c", "int other(void) { return 2; }\n");
    const one = t.commit("make");
    t.write("other.c", "int other(void) { return 3; }\n");
    const two = t.commit("other changed");
    const root = mkdtempSync(join(tmpdir(), "autofix-tree-"));
    const m = manager(f.base, { buildCache: { root, buildTreeDirs: ["build"] } });
    const make = (dir: string) => execFileSync("make", ["-s", "all"], { cwd: dir, encoding: "utf8" });

    const a = await m.prepare({ repo: acme, sha: one, id: "t1", installationId: 7 });
    expect(a.cache?.reused).toMatch(/no build tree yet/);
    make(a.dir);
    expect(readFileSync(join(a.dir, "build/log"), "utf8").trim().split("\n")).toHaveLength(2);
    await m.remove(a);

    const b = await m.prepare({ repo: acme, sha: two, id: "t2", installationId: 7 });
    expect(b.cache?.reused).toMatch(/build tree \(build\) reused from [0-9a-f]{7}: 1 files to rebuild from/);
    // Another job of the same repository meanwhile gets no build tree (one at a time).
    const c = await m.prepare({ repo: acme, sha: two, id: "t3", installationId: 7 });
    expect(c.cache?.reused).toMatch(/in use by another job/);
    expect(existsSync(join(c.dir, "build"))).toBe(false);
    // Another installation never sees it.
    const d = await m.prepare({ repo: acme, sha: two, id: "t4", installationId: 8 });
    expect(existsSync(join(d.dir, "build"))).toBe(false);
    make(b.dir);
    // Only other.c, the file that changed, was compiled again.
    expect(readFileSync(join(b.dir, "build/log"), "utf8").trim().split("\n").slice(2)).toEqual([
      "built build/other.o",
    ]);
    expect(statSync(join(b.dir, "main.c")).mtimeMs).toBeLessThan(Date.UTC(2001, 0, 1));
    for (const w of [b, c, d]) await m.remove(w);
  });
});

describe("submodules of a gate's fresh checkout", () => {
  it("come from the workspace's object stores, without the network, at the recorded commits", async () => {
    const f = fixture();
    const m = manager(f.base);
    const ws = await m.prepare({ repo: acme, sha: f.top2, baseBranch: "main", id: "gate-src" });
    const gate = join(mkdtempSync(join(tmpdir(), "autofix-gate-")), "checkout");
    const gitOpts = { helperPath: m.helperPath };
    await createJobRepo({ dir: gate, objectStores: [join(ws.mirror, "objects")], sha: f.top2, git: gitOpts });
    // The remotes are gone: nothing may be fetched.
    execFileSync("rm", ["-rf", f.root]);
    const r = await checkoutSubmodulesFromStores({
      dir: gate,
      commit: f.top2,
      stores: ws.objectStores ?? [],
      git: gitOpts,
    });
    expect(r.missing).toEqual([]);
    expect(r.checkedOut).toEqual([
      { path: "third_party/sub", commit: f.sub1 },
      { path: "third_party/sub/deps/subsub", commit: f.leaf1 },
    ]);
    expect(readFileSync(join(gate, "third_party/sub/deps/subsub/leaf.h"), "utf8")).toBe("#define LEAF 1\n");
    // With only the main mirror's objects, the submodule is reported missing and left empty.
    const bare = join(mkdtempSync(join(tmpdir(), "autofix-gate-")), "checkout");
    await createJobRepo({ dir: bare, objectStores: [join(ws.mirror, "objects")], sha: f.top2, git: gitOpts });
    const r2 = await checkoutSubmodulesFromStores({
      dir: bare,
      commit: f.top2,
      stores: [join(ws.mirror, "objects")],
      git: gitOpts,
    });
    expect(r2.missing).toEqual([{ path: "third_party/sub", commit: f.sub1 }]);
    expect(readdirSync(join(bare, "third_party/sub"))).toEqual([]);
    await m.remove(ws);
  });
});

describe("the gate's checkout", () => {
  it("has the commit's submodules, from the stores read at setup", async () => {
    const f = fixture();
    const m = manager(f.base);
    const ws = await m.prepare({ repo: acme, sha: f.top2, baseBranch: "main", id: "gate" });
    // What the agent's setup reads before the model runs.
    const stores = [
      ...new Set([...(await borrowedObjectStores(ws.dir)), ...(await nestedObjectStores(ws.dir))]),
    ];
    expect(stores.sort()).toEqual([...(ws.objectStores ?? [])].sort());
    const exec = createHostExecutor({ workspace: ws.dir, env: {}, cards: [], jobId: "gate-test" });
    const gate = await createGateCheckout({ exec, trustedStores: stores, base: f.top2, commit: f.top2 });
    try {
      expect(readFileSync(join(gate.dir, "third_party/sub/deps/subsub/leaf.h"), "utf8")).toBe(
        "#define LEAF 1\n",
      );
      expect(git(join(gate.dir, "third_party/sub"), ["rev-parse", "HEAD"])).toBe(f.sub1);
    } finally {
      await gate.dispose();
      await exec.dispose();
      await m.remove(ws);
    }
  });
});
