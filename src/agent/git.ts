import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { scrubEnv } from "./process.js";

/**
 * Git as the harness uses it in the workspace. The model's commands may have written to the
 * workspace's `.git/config` or hooks, so every harness git call disables hooks and fsmonitor
 * and runs with the same scrubbed environment as the agent's commands: nothing the model
 * planted can run with a secret in reach. Pushing is not done here.
 */

/** Author and committer email of every commit the harness makes: the only commits a push may replace. */
export const COMMIT_EMAIL = "autofix@users.noreply.github.com";

export const SAFE_GIT_CONFIG = [
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "core.fsmonitor=false",
  "-c",
  "core.quotePath=false",
  "-c",
  "commit.gpgSign=false",
  "-c",
  "user.name=autofix",
  "-c",
  `user.email=${COMMIT_EMAIL}`,
];

export class GitError extends Error {
  override name = "GitError";
}

export interface GitOptions {
  signal?: AbortSignal;
  env?: Record<string, string>;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export async function git(
  cwd: string,
  args: string[],
  opts: GitOptions = {},
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await execa("git", [...SAFE_GIT_CONFIG, ...args], {
    cwd,
    env: { ...scrubEnv(process.env), GIT_CONFIG_NOSYSTEM: "1", ...opts.env },
    extendEnv: false,
    reject: false,
    stripFinalNewline: true,
    timeout: 120_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    maxBuffer: 64 * 1024 * 1024,
  });
  const exitCode = r.exitCode ?? -1;
  if (exitCode !== 0 && !opts.allowFailure) {
    throw new GitError(`git ${args.join(" ")} failed (${exitCode}): ${String(r.stderr).slice(0, 500)}`);
  }
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode };
}

export async function isGitRepo(cwd: string): Promise<boolean> {
  const r = await git(cwd, ["rev-parse", "--is-inside-work-tree"], { allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() === "true";
}

export async function revParse(cwd: string, rev: string): Promise<string> {
  return (await git(cwd, ["rev-parse", "--verify", `${rev}^{commit}`])).stdout.trim();
}

/** Paths with changes against `rev`, tracked and untracked (respecting .gitignore). */
export async function changedPaths(cwd: string, rev: string): Promise<string[]> {
  const tracked = await git(cwd, ["diff", "--name-only", "-z", rev, "--"]);
  const untracked = await git(cwd, ["ls-files", "--others", "--exclude-standard", "-z"]);
  const all = [...tracked.stdout.split("\0"), ...untracked.stdout.split("\0")].filter(Boolean);
  return [...new Set(all)].sort();
}

/**
 * Make a commit whose parent is `parent` and whose tree is the parent's tree plus the current
 * worktree state of `paths` (added, modified or deleted), without touching HEAD, the index or
 * the worktree. Uses a temporary index.
 */
export async function commitPaths(
  cwd: string,
  parent: string,
  paths: string[],
  message: string,
  opts: { signal?: AbortSignal } = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "autofix-index-"));
  const env = { GIT_INDEX_FILE: path.join(dir, "index") };
  try {
    await git(cwd, ["read-tree", parent], { env, ...opts });
    if (paths.length > 0) {
      // --all records deletions too; -f would add ignored files, which we do not want.
      await git(cwd, ["add", "--all", "--", ...paths.map((p) => `:(literal)${p}`)], { env, ...opts });
    }
    const tree = (await git(cwd, ["write-tree"], { env, ...opts })).stdout.trim();
    return (
      await git(cwd, ["commit-tree", tree, "-p", parent, "-m", message], { env, ...opts })
    ).stdout.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Files that differ between two commits. */
export async function diffNames(cwd: string, from: string, to: string): Promise<string[]> {
  const r = await git(cwd, ["diff", "--name-only", "-z", from, to, "--"]);
  return r.stdout.split("\0").filter(Boolean).sort();
}
