import { lstat, readlink } from "node:fs/promises";
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
 * the executor runs). The content is the worktree's bytes as they are (`hash-object
 * --no-filters`): no clean filter, eol conversion or attribute of the model's (`.git/info/
 * attributes`, `.git/config`) changes what is committed, and none of its commands runs.
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
    const records: string[] = [];
    const files: string[] = [];
    for (const p of [...new Set(paths)]) {
      if (p.includes("\n") || p.includes("\0"))
        throw new GitError(`cannot commit a path with a newline: ${JSON.stringify(p)}`);
      const st = await lstat(path.join(exec.workspace, p)).catch(() => null);
      if (!st) records.push(`0 ${"0".repeat(40)}\t${p}`);
      else if (st.isSymbolicLink()) {
        const r = await exec.run(["git", ...SAFE_GIT_CONFIG, "hash-object", "-w", "--stdin"], {
          cwd: exec.workspace,
          env: { ...SAFE_GIT_ENV },
          input: await readlink(path.join(exec.workspace, p)),
          timeoutMs: 120_000,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        if (r.exitCode !== 0)
          throw new GitError(`git hash-object failed for ${p}: ${r.stderr.slice(0, 300)}`);
        records.push(`120000 ${r.stdout.trim()}\t${p}`);
      } else if (st.isFile()) files.push(p);
      // Anything else (a folder: a nested repository) is not committed, as `git add` would not.
    }
    if (files.length > 0) {
      const r = await exec.run(
        ["git", ...SAFE_GIT_CONFIG, "hash-object", "-w", "--no-filters", "--stdin-paths"],
        {
          cwd: exec.workspace,
          env: { ...SAFE_GIT_ENV },
          input: `${files.join("\n")}\n`,
          timeoutMs: 120_000,
          headBytes: 0,
          tailBytes: 64 * 1024 * 1024,
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      );
      const ids = r.stdout.trim().split("\n");
      if (r.exitCode !== 0 || ids.length !== files.length)
        throw new GitError(`git hash-object failed: ${r.stderr.slice(0, 300)}`);
      for (const [i, p] of files.entries()) {
        const st = await lstat(path.join(exec.workspace, p));
        records.push(`${st.mode & 0o111 ? "100755" : "100644"} ${ids[i]}\t${p}`);
      }
    }
    if (records.length > 0) {
      // A zero mode removes the entry: deletions are recorded too.
      const r = await exec.run(["git", ...SAFE_GIT_CONFIG, "update-index", "-z", "--index-info"], {
        cwd: exec.workspace,
        env: { ...SAFE_GIT_ENV, ...env },
        input: records.map((l) => `${l}\0`).join(""),
        timeoutMs: 120_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (r.exitCode !== 0) throw new GitError(`git update-index failed: ${r.stderr.slice(0, 300)}`);
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
