import { lstat, mkdir, readdir, readFile, realpath } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { createJobRepo } from "./job-repo.js";
import { type GitOptions, remoteGit, remoteGitOk } from "./remote.js";
import { checkSubmodulePath, joinSubmodulePath, parseLsTree, SubmoduleError } from "./submodules.js";

/**
 * Submodules of a checkout from object stores already on the host, with no network: for a
 * gate's fresh checkout (src/agent/phases/checkout.ts), whose submodules are the workspace's
 * (Workspace.objectStores lists the mirrors they came from). Each gitlink of the commit is
 * checked out as a repository of its own borrowing the store that holds the recorded commit,
 * recursively; a gitlink no store holds is left empty and reported. Every git command is the
 * service's, in repositories it just made; the paths follow the rules of src/git/submodules.ts.
 */

/**
 * The folder a submodule is checked out in: inside the work tree, reached through real folders
 * only (a symbolic link in the tree must not carry the checkout elsewhere), and empty (git
 * checks a gitlink out as an empty folder). Throws SubmoduleError.
 */
export async function submoduleCheckoutDir(top: string, path: string): Promise<string> {
  checkSubmodulePath(path);
  const root = await realpath(top);
  let cur = root;
  for (const part of path.split("/")) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => null);
    if (!st) await mkdir(cur);
    else if (st.isSymbolicLink() || !st.isDirectory())
      throw new SubmoduleError(
        `submodule path ${path} goes through ${relative(root, cur)}, which is not a folder`,
      );
  }
  const real = await realpath(cur);
  if (!real.startsWith(root + sep)) throw new SubmoduleError(`submodule path ${path} leaves the work tree`);
  if ((await readdir(real)).length > 0) throw new SubmoduleError(`submodule folder ${path} is not empty`);
  return real;
}

export interface StoresCheckoutInput {
  /** The checkout (a job repository the service made, at `commit`). */
  dir: string;
  commit: string;
  /** `objects` folders of bare mirrors (Workspace.objectStores). */
  stores: readonly string[];
  git: Omit<GitOptions, "cwd" | "token" | "remoteUrl">;
  maxDepth?: number;
}

export interface StoresCheckoutResult {
  checkedOut: Array<{ path: string; commit: string }>;
  /** Gitlinks whose commit no store holds (left empty). */
  missing: Array<{ path: string; commit: string }>;
}

export async function checkoutSubmodulesFromStores(i: StoresCheckoutInput): Promise<StoresCheckoutResult> {
  const out: StoresCheckoutResult = { checkedOut: [], missing: [] };
  const maxDepth = i.maxDepth ?? 8;
  const storeFor = async (commit: string): Promise<string | null> => {
    for (const s of i.stores) {
      const r = await remoteGit(["--git-dir", dirname(s), "cat-file", "-e", `${commit}^{commit}`], i.git);
      if (r.exitCode === 0) return s;
    }
    return null;
  };
  const visit = async (dir: string, commit: string, prefix: string, depth: number): Promise<void> => {
    const tree = parseLsTree(await remoteGitOk(["ls-tree", "-r", "-z", commit], { ...i.git, cwd: dir }));
    if (tree.gitlinks.size === 0) return;
    if (depth >= maxDepth)
      throw new SubmoduleError(`submodules nested deeper than ${maxDepth} levels at ${prefix}`);
    for (const [path, sub] of tree.gitlinks) {
      const where = joinSubmodulePath(prefix, path);
      const subDir = await submoduleCheckoutDir(dir, path);
      const store = await storeFor(sub);
      if (!store) {
        out.missing.push({ path: where, commit: sub });
        continue;
      }
      await createJobRepo({ dir: subDir, objectStores: [store], sha: sub, git: i.git });
      out.checkedOut.push({ path: where, commit: sub });
      await visit(subDir, sub, where, depth + 1);
    }
  };
  await visit(i.dir, i.commit, "", 0);
  return out;
}

/**
 * The object stores the submodule repositories nested in a work tree borrow from (their
 * `objects/info/alternates`), absolute, without duplicates: what a gate's checkout needs for
 * its submodules. Read as files, walking real folders only (no link is followed), and only
 * before anything of the model's ran (at setup). The top repository's own `.git` is skipped.
 */
export async function nestedObjectStores(workTree: string): Promise<string[]> {
  const found = new Set<string>();
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (e.name === ".git") {
        if (top) continue;
        const objects = join(p, "objects");
        const text = await readFile(join(objects, "info", "alternates"), "utf8").catch(() => "");
        for (const line of text.split("\n").map((l) => l.trim()))
          if (line && !line.startsWith("#")) found.add(resolve(objects, line));
        continue;
      }
      await walk(p, false);
    }
  };
  await walk(workTree, true);
  return [...found];
}
