import path from "node:path";
import { COMMIT_EMAIL, SAFE_GIT_CONFIG, SAFE_GIT_ENV } from "../git/safe.js";
import type { JobExecutor } from "../sandbox/executor.js";

/**
 * Git as the harness uses it in the workspace, through the job's executor (so it runs where
 * the job's commands run). The model's commands may have written to the workspace's
 * `.git/config` or hooks, so every harness git call disables hooks and fsmonitor: nothing the
 * model planted runs with a secret in reach. Pushing is not done here.
 */

export { COMMIT_EMAIL };

export class GitError extends Error {
  override name = "GitError";
}

export interface GitOptions {
  signal?: AbortSignal;
  env?: Record<string, string>;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Folder to run in (default: the workspace). */
  cwd?: string;
}

export async function git(
  exec: JobExecutor,
  args: string[],
  opts: GitOptions = {},
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await exec.run(["git", ...SAFE_GIT_CONFIG, ...args], {
    cwd: opts.cwd ?? exec.workspace,
    env: { ...SAFE_GIT_ENV, ...opts.env },
    timeoutMs: 120_000,
    headBytes: 0,
    tailBytes: 64 * 1024 * 1024,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const exitCode = r.exitCode ?? -1;
  const stdout = r.stdout.replace(/\n$/, "");
  const stderr = r.stderr.replace(/\n$/, "");
  if (exitCode !== 0 && !opts.allowFailure) {
    throw new GitError(`git ${args.join(" ")} failed (${exitCode}): ${stderr.slice(0, 500)}`);
  }
  return { stdout, stderr, exitCode };
}

export async function isGitRepo(exec: JobExecutor): Promise<boolean> {
  const r = await git(exec, ["rev-parse", "--is-inside-work-tree"], { allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() === "true";
}

export async function revParse(exec: JobExecutor, rev: string): Promise<string> {
  return (await git(exec, ["rev-parse", "--verify", `${rev}^{commit}`])).stdout.trim();
}

/** Paths with changes against `rev`, tracked and untracked (respecting .gitignore). */
export async function changedPaths(exec: JobExecutor, rev: string): Promise<string[]> {
  const tracked = await git(exec, ["diff", "--name-only", "-z", rev, "--"]);
  const untracked = await git(exec, ["ls-files", "--others", "--exclude-standard", "-z"]);
  const all = [...tracked.stdout.split("\0"), ...untracked.stdout.split("\0")].filter(Boolean);
  return [...new Set(all)].sort();
}

/**
 * Make a commit whose parent is `parent` and whose tree is the parent's tree plus the current
 * worktree state of `paths` (added, modified or deleted), without touching HEAD, the index or
 * the worktree. Uses a temporary index inside the repository's git folder (visible wherever
 * the executor runs).
 */
export async function commitPaths(
  exec: JobExecutor,
  parent: string,
  paths: string[],
  message: string,
  opts: { signal?: AbortSignal } = {},
): Promise<string> {
  // Nothing the model started may change the files while they are committed.
  await exec.killAll();
  const gitDir = (await git(exec, ["rev-parse", "--absolute-git-dir"], opts)).stdout.trim();
  const index = path.join(gitDir, `autofix-index-${process.pid}-${Date.now().toString(36)}`);
  const env = { GIT_INDEX_FILE: index };
  try {
    await git(exec, ["read-tree", parent], { env, ...opts });
    if (paths.length > 0) {
      // --all records deletions too; -f would add ignored files, which we do not want.
      await git(exec, ["add", "--all", "--", ...paths.map((p) => `:(literal)${p}`)], { env, ...opts });
    }
    const tree = (await git(exec, ["write-tree"], { env, ...opts })).stdout.trim();
    return (
      await git(exec, ["commit-tree", tree, "-p", parent, "-m", message], { env, ...opts })
    ).stdout.trim();
  } finally {
    await exec.run(["rm", "-f", index], { cwd: exec.workspace }).catch(() => {});
  }
}

/** Files that differ between two commits. */
export async function diffNames(exec: JobExecutor, from: string, to: string): Promise<string[]> {
  const r = await git(exec, ["diff", "--name-only", "-z", from, to, "--"]);
  return r.stdout.split("\0").filter(Boolean).sort();
}
