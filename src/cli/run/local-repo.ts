import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { COMMIT_EMAIL } from "../../agent/index.js";
import { importCommits } from "../../git/import.js";
import { createJobRepo } from "../../git/job-repo.js";
import { ensureCredentialHelper } from "../../git/remote.js";
import { SAFE_GIT_CONFIG, SAFE_GIT_ENV } from "../../git/safe.js";
import { BRANCH_PREFIX } from "../../publish/push.js";
import { promptSlug } from "../../publish/report.js";
import { scrubEnv } from "../../sandbox/env.js";
import { runHostCommand } from "../../shared/process.js";

/**
 * The person's repository during `autofix run`. Neither their working tree nor their `.git`
 * is ever given to the job: the agent works in a repository of its own (src/git/job-repo.ts)
 * in a temporary folder, borrowing the person's objects read-only, removed afterwards. What it
 * proved comes back as commits imported into the person's repository (src/git/import.ts) and
 * two refs: the fix branch and `refs/autofix-repro/<branch>`. Every git command here runs on
 * the host with hooks off and a scrubbed environment (src/git/safe.ts).
 */

interface GitResult {
  ok: boolean;
  out: string;
  err: string;
}

async function gitTry(cwd: string, args: string[]): Promise<GitResult> {
  try {
    const r = await runHostCommand(["git", ...SAFE_GIT_CONFIG, ...args], {
      cwd,
      env: scrubEnv(process.env, { ...SAFE_GIT_ENV }),
      timeoutMs: 120_000,
    });
    return { ok: r.exitCode === 0, out: r.stdout.trim(), err: r.stderr.trim() };
  } catch (err) {
    return { ok: false, out: "", err: (err as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// Questions preflight asks (read-only)

/** The repository holding `dir` and the commit `baseRef` names there (null: not a commit). */
export type RepositoryFact = { root: string; baseSha: string | null } | { root: null; whyNot: string };

export async function findRepository(dir: string, baseRef: string): Promise<RepositoryFact> {
  const top = await gitTry(dir, ["rev-parse", "--show-toplevel"]);
  if (!top.ok || !top.out) return { root: null, whyNot: top.err.split("\n").pop() || "no .git found" };
  const sha = await gitTry(top.out, ["rev-parse", "--quiet", "--verify", `${baseRef}^{commit}`]);
  return { root: top.out, baseSha: sha.ok && sha.out ? sha.out : null };
}

/** Whether `path` is in commit `sha`. */
export async function isInCommit(repo: string, sha: string, path: string): Promise<boolean> {
  return (await gitTry(repo, ["cat-file", "-e", `${sha}:${path}`])).ok;
}

/** Whether git ignores `path` (relative to the working tree of `repo`; it need not exist). */
export async function isIgnored(repo: string, path: string): Promise<boolean> {
  return (await gitTry(repo, ["check-ignore", "-q", "--no-index", "--", path])).ok;
}

/** The URL of the `origin` remote, or null when there is none. */
export async function originUrl(repo: string): Promise<string | null> {
  const r = await gitTry(repo, ["remote", "get-url", "origin"]);
  return r.ok && r.out ? r.out : null;
}

/** The branch the draft PR targets: --base when it names a branch, else the current branch, else origin's default. */
export async function prBaseBranch(repo: string, base: string | undefined): Promise<string | null> {
  if (base) {
    if ((await gitTry(repo, ["show-ref", "--verify", "--quiet", `refs/heads/${base}`])).ok) return base;
    if ((await gitTry(repo, ["show-ref", "--verify", "--quiet", `refs/remotes/origin/${base}`])).ok)
      return base;
    const m = /^(?:refs\/remotes\/)?origin\/(.+)$/.exec(base);
    if (m && (await gitTry(repo, ["show-ref", "--verify", "--quiet", `refs/remotes/origin/${m[1]}`])).ok)
      return m[1]!;
  } else {
    const current = await gitTry(repo, ["symbolic-ref", "--quiet", "--short", "HEAD"]);
    if (current.ok && current.out) return current.out;
  }
  const def = await gitTry(repo, ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"]);
  if (def.ok && def.out.startsWith("origin/")) return def.out.slice("origin/".length);
  return null;
}

// ---------------------------------------------------------------------------------------------
// The run's own repository and branch

/** `<first words of the prompt>`, the fix branch's name after `autofix/`. */
export function branchSlug(prompt: string): string {
  return promptSlug(prompt, "fix");
}

/**
 * The fix branch: `autofix/<slug>`, reused when it is the branch of an earlier run (every
 * commit on its tip written by the harness, not checked out anywhere), else `-2`, `-3`, ...
 * so a branch someone works on is never moved.
 */
async function chooseBranch(repo: string, slug: string): Promise<{ name: string; reused: boolean }> {
  const wt = await gitTry(repo, ["worktree", "list", "--porcelain"]);
  const checkedOut = new Set(
    wt.out
      .split("\n")
      .filter((l) => l.startsWith("branch "))
      .map((l) => l.slice(7)),
  );
  for (let i = 1; i < 100; i++) {
    const name = `${BRANCH_PREFIX}${slug}${i === 1 ? "" : `-${i}`}`;
    const ref = `refs/heads/${name}`;
    const tip = await gitTry(repo, ["rev-parse", "--quiet", "--verify", `${ref}^{commit}`]);
    if (!tip.ok) return { name, reused: false };
    if (checkedOut.has(ref)) continue;
    const who = await gitTry(repo, ["log", "-1", "--format=%ae %ce", ref]);
    if (who.ok && who.out === `${COMMIT_EMAIL} ${COMMIT_EMAIL}`) return { name, reused: true };
  }
  throw new Error(`no free branch name ${BRANCH_PREFIX}${slug}-N`);
}

export interface LocalRepo {
  readonly repo: string;
  /** The job's repository the agent works in (exists once createWorkspace succeeded). */
  readonly workspace: string;
  /** The object stores the job's repository borrows (read-only for the sandbox). */
  objectStores(): string[];
  /** Make the job's repository, detached at `sha`; null, or why it could not be made. */
  createWorkspace(sha: string): Promise<string | null>;
  /**
   * Bring the run's commits into the person's repository and point the fix branch and the
   * reproduction ref at them (each only when the run made that commit).
   */
  keepResults(r: {
    baseSha: string;
    branch: string;
    fixSha: string | null;
    reproSha: string | null;
  }): Promise<void>;
  /** The fix branch for `slug` (see chooseBranch). */
  chooseBranch(slug: string): Promise<{ name: string; reused: boolean }>;
  /** The git credential helper for the push, in the temporary folder. */
  credentialHelper(): Promise<string>;
  /** Remove the temporary folder; a warning, or null. Runs once. */
  cleanup(): Promise<string | null>;
}

/** A temporary folder under `tmpParent` for the run's repository and credential helper. */
export async function openLocalRepo(repo: string, tmpParent: string): Promise<LocalRepo> {
  const work = await mkdtemp(join(tmpParent, "autofix-run-"));
  const workspace = join(work, "workspace");
  // A sandbox running as another uid must be able to pass through (not list) the folder.
  await chmod(work, 0o711);
  let removed = false;
  const stores: string[] = [];
  return {
    repo,
    workspace,
    objectStores: () => [...stores],
    async createWorkspace(sha) {
      const common = await gitTry(repo, ["rev-parse", "--path-format=absolute", "--git-common-dir"]);
      if (!common.ok) return `cannot find the git folder of ${repo}: ${common.err}`;
      stores.splice(0, stores.length, join(common.out, "objects"));
      try {
        await createJobRepo({
          dir: workspace,
          objectStores: [...stores],
          sha,
          git: { helperPath: join(work, "bin", "autofix-git-credential") },
        });
        return null;
      } catch (err) {
        return `cannot create the run's repository of ${repo} at ${sha}: ${(err as Error).message}`;
      }
    },
    async keepResults(r) {
      const tips = [r.fixSha, r.reproSha].filter((t): t is string => !!t);
      if (tips.length === 0) return;
      await importCommits({
        into: repo,
        fromObjects: join(workspace, ".git", "objects"),
        tips,
        have: [r.baseSha],
      });
      const refs: Array<[string, string | null]> = [
        [`refs/heads/${r.branch}`, r.fixSha],
        [`refs/autofix-repro/${r.branch}`, r.reproSha],
      ];
      for (const [ref, sha] of refs) {
        if (!sha) continue;
        const set = await gitTry(repo, ["update-ref", ref, sha]);
        if (!set.ok) throw new Error(`cannot set ${ref} in ${repo}: ${set.err}`);
      }
    },
    chooseBranch: (slug) => chooseBranch(repo, slug),
    credentialHelper: () => ensureCredentialHelper(join(work, "bin", "autofix-git-credential")),
    async cleanup() {
      if (removed) return null;
      removed = true;
      try {
        await rm(work, { recursive: true, force: true });
        return null;
      } catch (err) {
        return `could not remove the temporary folder ${work}: ${(err as Error).message}`;
      }
    },
  };
}
