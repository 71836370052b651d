import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createJobRepo } from "../git/job-repo.js";
import { ensureCredentialHelper, RemoteGitError, remoteGit, remoteGitOk } from "../git/remote.js";
import { pidAlive } from "../shared/process.js";

/**
 * Workspaces: one bare mirror per repository on the host, fetched incrementally, and per job
 * a repository of the job's own (src/git/job-repo.ts) at the exact commit the job names,
 * borrowing the mirror's objects read-only. Nothing a job writes reaches the mirror: its
 * config, hooks and refs are the service's alone. Workspaces are removed after the job;
 * leftovers of a crashed worker are removed on the next start.
 */

export interface RepoRef {
  owner: string;
  name: string;
}

export interface Workspace {
  /** The job's repository (its work tree), where the job works. */
  dir: string;
  sha: string;
  mirror: string;
  repo: RepoRef;
  /** Ref in the mirror that keeps the job's commit while the job runs. */
  keepRef: string;
}

export interface PrepareInput {
  repo: RepoRef;
  sha: string;
  /** Branch to keep fetched with the commit, so later fetches negotiate against it. */
  baseBranch?: string;
  /** Unique per job attempt: names the worktree folder. */
  id: string;
  token?: string;
  signal?: AbortSignal;
}

export interface WorkspaceManagerLike {
  prepare(input: PrepareInput): Promise<Workspace>;
  remove(ws: Workspace): Promise<void>;
  cleanupStale(): Promise<string[]>;
  remoteUrl(repo: RepoRef): string;
  readonly helperPath: string;
}

/** `https://github.com/owner/name.git` (or GHE); also file:// bases for tests. */
export function repoRemoteUrl(webBase: string, repo: RepoRef): string {
  return `${webBase.replace(/\/+$/, "")}/${repo.owner}/${repo.name}.git`;
}

const SAFE_PART = /^[A-Za-z0-9._-]+$/;

function safePart(s: string, what: string): string {
  if (!SAFE_PART.test(s) || s === "." || s === "..") throw new Error(`unsafe ${what} "${s}"`);
  return s;
}

/** Folder name of a job's worktree: `<pid>-<id>`, so a later start knows whose it was. */
export function worktreeName(pid: number, id: string): string {
  return `${pid}-${id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 80)}`;
}

/** Pid a worktree folder name belongs to, or null for foreign names. Pure. */
export function worktreeOwnerPid(name: string): number | null {
  const m = /^(\d+)-/.exec(name);
  return m ? Number(m[1]) : null;
}

export interface WorkspaceManagerOptions {
  /** settings.AUTOFIX_WORK_DIR */
  workDir: string;
  /** Web base URL for clone URLs (settings.githubWebUrl), or a function for full control. */
  remote: string | ((repo: RepoRef) => string);
  baseEnv?: NodeJS.ProcessEnv;
  /** Is a process alive? (injected for tests) */
  isAlive?: (pid: number) => boolean;
}

export class WorkspaceManager implements WorkspaceManagerLike {
  readonly workDir: string;
  readonly helperPath: string;
  /** Mirrors created from nothing, and fetches made, since start (observability and tests). */
  readonly stats = { mirrorsCreated: 0, fetches: 0, worktrees: 0 };
  #locks = new Map<string, Promise<unknown>>();
  #active = new Set<string>();
  #opts: WorkspaceManagerOptions;

  constructor(opts: WorkspaceManagerOptions) {
    this.#opts = opts;
    this.workDir = resolve(opts.workDir);
    this.helperPath = join(this.workDir, "bin", "autofix-git-credential");
  }

  remoteUrl(repo: RepoRef): string {
    const r = this.#opts.remote;
    return typeof r === "function" ? r(repo) : repoRemoteUrl(r, repo);
  }

  mirrorDir(repo: RepoRef): string {
    return join(
      this.workDir,
      "mirrors",
      safePart(repo.owner, "owner"),
      `${safePart(repo.name, "repository")}.git`,
    );
  }

  get worktreesDir(): string {
    return join(this.workDir, "workspaces");
  }

  /** Serialize git operations on one mirror within this process. */
  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => {});
    this.#locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.#locks.get(key) === settled) this.#locks.delete(key);
    }
  }

  #gitOpts(extra: { cwd?: string; token?: string; signal?: AbortSignal; remoteUrl?: string }) {
    return {
      helperPath: this.helperPath,
      ...(this.#opts.baseEnv ? { baseEnv: this.#opts.baseEnv } : {}),
      ...extra,
    };
  }

  async #hasCommit(mirror: string, sha: string): Promise<boolean> {
    const r = await remoteGit(["cat-file", "-e", `${sha}^{commit}`], this.#gitOpts({ cwd: mirror }));
    return r.exitCode === 0;
  }

  /** Make sure the mirror exists and holds `sha`: fetch just that commit (and the base branch). */
  async ensureCommit(input: Omit<PrepareInput, "id"> & { keepRef: string }): Promise<string> {
    const mirror = this.mirrorDir(input.repo);
    await ensureCredentialHelper(this.helperPath);
    const sig = input.signal ? { signal: input.signal } : {};
    const tok = input.token ? { token: input.token } : {};
    let exists = true;
    try {
      await stat(join(mirror, "HEAD"));
    } catch {
      exists = false;
    }
    if (!exists) {
      await mkdir(mirror, { recursive: true });
      await remoteGitOk(["init", "--quiet", "--bare", mirror], this.#gitOpts(sig));
      this.stats.mirrorsCreated++;
    }
    const url = this.remoteUrl(input.repo);
    if (!(await this.#hasCommit(mirror, input.sha))) {
      const specs = [`+${input.sha}:${input.keepRef}`];
      if (input.baseBranch) specs.push(`+refs/heads/${input.baseBranch}:refs/heads/${input.baseBranch}`);
      this.stats.fetches++;
      const first = await remoteGit(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, ...specs],
        this.#gitOpts({ cwd: mirror, remoteUrl: url, ...tok, ...sig }),
      );
      if (first.cancelled) throw new RemoteGitError("git fetch cancelled", first);
      if (first.exitCode !== 0) {
        // Servers that refuse a bare SHA (or a base branch that is gone): fetch the branches.
        this.stats.fetches++;
        await remoteGitOk(
          [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--prune",
            url,
            "+refs/heads/*:refs/heads/*",
          ],
          this.#gitOpts({ cwd: mirror, remoteUrl: url, ...tok, ...sig }),
        );
        if (!(await this.#hasCommit(mirror, input.sha))) {
          throw new Error(
            `commit ${input.sha} is not on ${input.repo.owner}/${input.repo.name} (force-pushed away, or the wrong repository)`,
          );
        }
      }
    }
    await remoteGitOk(["update-ref", input.keepRef, input.sha], this.#gitOpts({ cwd: mirror }));
    return mirror;
  }

  async prepare(input: PrepareInput): Promise<Workspace> {
    if (!/^[0-9a-f]{40}$/.test(input.sha)) throw new Error(`not a full commit SHA: "${input.sha}"`);
    const mirror = this.mirrorDir(input.repo);
    const name = worktreeName(process.pid, input.id);
    const dir = join(this.worktreesDir, name);
    const keepRef = `refs/autofix/jobs/${name}`;
    this.#active.add(dir);
    try {
      await this.#withLock(mirror, async () => {
        await this.ensureCommit({ ...input, keepRef });
        await mkdir(this.worktreesDir, { recursive: true });
      });
      // The keep-ref pins the commit in the mirror while the job runs; the checkout itself
      // only reads the mirror's objects, so it needs no lock.
      await createJobRepo({
        dir,
        objectStores: [join(mirror, "objects")],
        sha: input.sha,
        git: this.#gitOpts(input.signal ? { signal: input.signal } : {}),
      });
      const head = (await remoteGitOk(["rev-parse", "HEAD"], this.#gitOpts({ cwd: dir }))).trim();
      if (head !== input.sha) throw new Error(`worktree is at ${head}, expected ${input.sha}`);
      this.stats.worktrees++;
      return { dir, sha: input.sha, mirror, repo: input.repo, keepRef };
    } catch (err) {
      await this.remove({ dir, sha: input.sha, mirror, repo: input.repo, keepRef }).catch(() => {});
      throw err;
    }
  }

  async remove(ws: Workspace): Promise<void> {
    try {
      await rm(ws.dir, { recursive: true, force: true });
      await this.#withLock(ws.mirror, async () => {
        await remoteGit(["update-ref", "-d", ws.keepRef], this.#gitOpts({ cwd: ws.mirror }));
      });
    } finally {
      this.#active.delete(ws.dir);
    }
  }

  /**
   * Remove worktrees left by processes that are gone (a crash, a SIGKILL) and prune the
   * mirrors' worktree records. Safe while other workers share the work folder: folders of
   * live processes are kept. Returns the removed folders.
   */
  async cleanupStale(): Promise<string[]> {
    const alive = this.#opts.isAlive ?? pidAlive;
    const removed: string[] = [];
    let names: string[] = [];
    try {
      names = await readdir(this.worktreesDir);
    } catch {
      names = [];
    }
    for (const name of names) {
      const dir = join(this.worktreesDir, name);
      if (this.#active.has(dir)) continue;
      const pid = worktreeOwnerPid(name);
      if (pid !== null && pid !== process.pid && alive(pid)) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    }
    const mirrorsRoot = join(this.workDir, "mirrors");
    let owners: string[] = [];
    try {
      owners = await readdir(mirrorsRoot);
    } catch {
      owners = [];
    }
    for (const owner of owners) {
      let repos: string[] = [];
      try {
        repos = await readdir(join(mirrorsRoot, owner));
      } catch {
        continue;
      }
      for (const repo of repos.filter((r) => r.endsWith(".git"))) {
        const mirror = join(mirrorsRoot, owner, repo);
        await this.#withLock(mirror, async () => {
          await remoteGit(["worktree", "prune"], this.#gitOpts({ cwd: mirror }));
          // Keep-refs of removed worktrees would pin old commits forever.
          const refs = await remoteGit(
            ["for-each-ref", "--format=%(refname)", "refs/autofix/jobs/"],
            this.#gitOpts({ cwd: mirror }),
          );
          for (const ref of refs.stdout.split("\n").filter(Boolean)) {
            const wt = ref.slice("refs/autofix/jobs/".length);
            const dir = join(this.worktreesDir, wt);
            if (this.#active.has(dir)) continue;
            const pid = worktreeOwnerPid(wt);
            if (pid !== null && pid !== process.pid && alive(pid)) continue;
            await remoteGit(["update-ref", "-d", ref], this.#gitOpts({ cwd: mirror }));
          }
        });
      }
    }
    return removed;
  }
}
