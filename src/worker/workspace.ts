import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createJobRepo } from "../git/job-repo.js";
import { ensureCredentialHelper, RemoteGitError, remoteGit, remoteGitOk } from "../git/remote.js";
import { submoduleCheckoutDir } from "../git/submodule-checkout.js";
import {
  checkSubmodulePath,
  joinSubmodulePath,
  lfsUrlOf,
  parseGitmodulesList,
  parseLsTree,
  resolveSubmoduleUrl,
  SubmoduleError,
  sameOwner,
  submoduleMirrorName,
  usesLfs,
} from "../git/submodules.js";
import type { CacheMount } from "../sandbox/executor.js";
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
  /**
   * Every object store the job's repositories borrow from (the mirror's, then each submodule
   * mirror's): the sandbox binds them read-only (ExecutorSpec.readOnlyPaths).
   */
  objectStores?: string[];
  /** Submodules checked out, recursively (path from the work tree's root). */
  submodules?: SubmoduleCheckout[];
  /** LFS files materialized (0 when the repository uses no LFS, null when LFS content was not fetched). */
  lfsFiles?: number | null;
  /** Things a person should know about the workspace (LFS not installed, a submodule left empty). */
  notes?: string[];
  /** The build cache of the job's repository and build configuration, when the worker keeps one. */
  cache?: BuildCacheLease;
}

export interface SubmoduleCheckout {
  path: string;
  commit: string;
  url: string;
  /** Fetched for this job (false: the mirror had the commit). */
  fetched: boolean;
}

/** What a job gets of its build cache: the folders to bind, the variables, and what was reused. */
export interface BuildCacheLease {
  dir: string;
  mounts: CacheMount[];
  env: Record<string, string>;
  /** For the status and the report: "compiler cache warm (3 jobs before)" or "cold". */
  reused: string;
  /** Held while the job has the repository's build tree (build tree reuse). */
  treeLock?: string;
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
  /** The installation the job runs for: build caches are kept per installation and repository. */
  installationId?: number;
  /** Names the build configuration (pool, image, build command): one cache per configuration. */
  buildConfig?: string;
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
  /** Submodules: recursively (default true). */
  submodules?: boolean;
  /** Git LFS content: fetched when the repository uses it and git-lfs is installed (default true). */
  lfs?: boolean;
  /** Build caches (settings.AUTOFIX_CACHE_DIR ...): none when absent. */
  buildCache?: BuildCacheOptions;
}

export interface BuildCacheOptions {
  /** Root folder: `<root>/<installation id>/<owner>/<name>/<configuration>/`. */
  root: string;
  /** ccache's size cap (CCACHE_MAXSIZE), e.g. "20G". */
  maxSize?: string;
  /** Give the folders to this uid and gid (the sandbox's, when the service runs as root). */
  owner?: { uid: number; gid: number };
  /**
   * Build tree reuse (off when absent): these top-level folders of the work tree (e.g.
   * `build`) are kept in the cache after a job and moved into the next job's work tree of the
   * same repository and configuration, one job at a time.
   */
  buildTreeDirs?: string[];
}

/** Nesting deeper than this, or more submodules than MAX_SUBMODULES, is refused. */
export const MAX_SUBMODULE_DEPTH = 8;
export const MAX_SUBMODULES = 500;

/**
 * The folder of a build cache: per installation, repository and build configuration, so no
 * two repositories and no two installations ever share one. Pure.
 */
export function buildCacheDir(
  root: string,
  installationId: number,
  repo: RepoRef,
  config = "default",
): string {
  if (!Number.isInteger(installationId) || installationId <= 0)
    throw new Error(`unsafe installation id ${installationId}`);
  const slug = config.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 40) || "default";
  const hash = createHash("sha256").update(config).digest("hex").slice(0, 10);
  return join(
    resolve(root),
    String(installationId),
    safePart(repo.owner, "owner"),
    safePart(repo.name, "repository"),
    `${slug.replace(/^[._]+/, "") || "cfg"}-${hash}`,
  );
}

export class WorkspaceManager implements WorkspaceManagerLike {
  readonly workDir: string;
  readonly helperPath: string;
  /** Mirrors created from nothing, and fetches made, since start (observability and tests). */
  readonly stats = {
    mirrorsCreated: 0,
    fetches: 0,
    worktrees: 0,
    submoduleMirrorsCreated: 0,
    submoduleFetches: 0,
    lfsFetches: 0,
  };
  #lfsInstalled: Promise<boolean> | undefined;
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
      // Tags too: the build's `git describe` needs them (they are cheap after the first fetch).
      const specs = [`+${input.sha}:${input.keepRef}`, "+refs/tags/*:refs/tags/*"];
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
            "+refs/tags/*:refs/tags/*",
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
    const ws: Workspace = { dir, sha: input.sha, mirror, repo: input.repo, keepRef };
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
      await this.#copyTags(mirror, dir);
      const complete = {
        objectStores: [join(mirror, "objects")],
        submodules: [] as SubmoduleCheckout[],
        notes: [] as string[],
        lfsFiles: 0 as number | null,
      };
      const url = this.remoteUrl(input.repo);
      const tree = await this.#treeOf(mirror, input.sha);
      complete.lfsFiles = await this.#lfs(dir, mirror, url, tree.attributes, input, "", complete.notes);
      if (this.#opts.submodules !== false)
        await this.#submodules(
          { dir, mirror, url, sha: input.sha, prefix: "", depth: 0, tree: tree.gitlinks },
          input,
          complete,
        );
      Object.assign(ws, complete);
      if (this.#opts.buildCache && input.installationId)
        ws.cache = await openBuildCache(
          this.#opts.buildCache,
          input.installationId,
          input.repo,
          input.buildConfig,
          dir,
        );
      if (ws.cache && this.#opts.buildCache?.buildTreeDirs?.length)
        await restoreBuildTree(ws, this.#opts.buildCache.buildTreeDirs, this.#opts.isAlive ?? pidAlive);
      this.stats.worktrees++;
      return ws;
    } catch (err) {
      await this.remove(ws).catch(() => {});
      throw err;
    }
  }

  /** The gitlinks and `.gitattributes` paths of a commit (read in a mirror the service owns). */
  async #treeOf(mirror: string, sha: string) {
    return parseLsTree(await remoteGitOk(["ls-tree", "-r", "-z", sha], this.#gitOpts({ cwd: mirror })));
  }

  /** The mirror's tags into a job repository (as packed refs: its objects are borrowed). */
  async #copyTags(mirror: string, dir: string): Promise<void> {
    const out = await remoteGitOk(
      ["for-each-ref", "--format=%(objectname) %(refname)", "refs/tags/"],
      this.#gitOpts({ cwd: mirror }),
    );
    const lines = out.split("\n").filter((l) => /^[0-9a-f]{40} refs\/tags\/\S+$/.test(l));
    if (lines.length > 0) await writeFile(join(dir, ".git", "packed-refs"), `${lines.join("\n")}\n`);
  }

  /**
   * Recursive submodules at the commits the tree records, each from a mirror of its own
   * (fetched incrementally, pinned by a ref per recorded commit), each checked out as a job
   * repository of its own borrowing that mirror's objects.
   */
  async #submodules(
    at: {
      dir: string;
      mirror: string;
      url: string;
      sha: string;
      prefix: string;
      depth: number;
      tree: Map<string, string>;
    },
    input: PrepareInput,
    out: {
      objectStores: string[];
      submodules: SubmoduleCheckout[];
      notes: string[];
      lfsFiles: number | null;
    },
  ): Promise<void> {
    if (at.tree.size === 0) return;
    if (at.depth >= MAX_SUBMODULE_DEPTH)
      throw new SubmoduleError(`submodules nested deeper than ${MAX_SUBMODULE_DEPTH} levels at ${at.prefix}`);
    const list = await remoteGit(
      ["config", "-z", "--list", "--blob", `${at.sha}:.gitmodules`],
      this.#gitOpts({ cwd: at.mirror }),
    );
    const entries = list.exitCode === 0 ? parseGitmodulesList(list.stdout) : [];
    for (const [path, commit] of at.tree) {
      const where = joinSubmodulePath(at.prefix, path);
      const entry = entries.find((e) => e.path === path);
      if (!entry?.url) {
        out.notes.push(`submodule ${where} has no URL in .gitmodules: left empty`);
        continue;
      }
      checkSubmodulePath(path);
      const subUrl = resolveSubmoduleUrl(at.url, entry.url);
      if (out.submodules.length >= MAX_SUBMODULES)
        throw new SubmoduleError(`more than ${MAX_SUBMODULES} submodules`);
      const subDir = await submoduleCheckoutDir(at.dir, path);
      const subMirror = this.submoduleMirrorDir(input.repo.owner, subUrl);
      // The installation's token only for repositories of the same owner on the same host.
      const token = input.token && sameOwner(at.url, subUrl) ? input.token : undefined;
      const fetched = await this.#withLock(subMirror, () =>
        this.#ensureSubmoduleCommit(subMirror, subUrl, commit, token, input.signal),
      );
      await createJobRepo({
        dir: subDir,
        objectStores: [join(subMirror, "objects")],
        sha: commit,
        git: this.#gitOpts(input.signal ? { signal: input.signal } : {}),
      });
      await this.#copyTags(subMirror, subDir);
      // What `git submodule` in the job expects to find: the submodule initialized and active.
      await remoteGitOk(["config", `submodule.${entry.name}.url`, subUrl], this.#gitOpts({ cwd: at.dir }));
      await remoteGitOk(["config", `submodule.${entry.name}.active`, "true"], this.#gitOpts({ cwd: at.dir }));
      if (!out.objectStores.includes(join(subMirror, "objects")))
        out.objectStores.push(join(subMirror, "objects"));
      out.submodules.push({ path: where, commit, url: subUrl, fetched });
      const tree = await this.#treeOf(subMirror, commit);
      const lfs = await this.#lfs(
        subDir,
        subMirror,
        subUrl,
        tree.attributes,
        { ...input, token: token ?? "" },
        where,
        out.notes,
      );
      if (out.lfsFiles !== null) out.lfsFiles = lfs === null ? null : out.lfsFiles + lfs;
      await this.#submodules(
        {
          dir: subDir,
          mirror: subMirror,
          url: subUrl,
          sha: commit,
          prefix: where,
          depth: at.depth + 1,
          tree: tree.gitlinks,
        },
        input,
        out,
      );
    }
  }

  /** A submodule's mirror: per superproject owner (so per installation) and URL. */
  submoduleMirrorDir(owner: string, url: string): string {
    return join(this.workDir, "submodules", safePart(owner, "owner"), submoduleMirrorName(url));
  }

  /** Make sure a submodule mirror holds `commit`; true when it had to fetch. */
  async #ensureSubmoduleCommit(
    mirror: string,
    url: string,
    commit: string,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const exists = await stat(join(mirror, "HEAD")).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await mkdir(mirror, { recursive: true });
      await remoteGitOk(["init", "--quiet", "--bare", mirror], this.#gitOpts(signal ? { signal } : {}));
      this.stats.submoduleMirrorsCreated++;
    }
    const pin = `refs/autofix/pinned/${commit}`;
    let fetched = false;
    if (!(await this.#hasCommit(mirror, commit))) {
      const opts = this.#gitOpts({
        cwd: mirror,
        remoteUrl: url,
        ...(token ? { token } : {}),
        ...(signal ? { signal } : {}),
      });
      this.stats.submoduleFetches++;
      fetched = true;
      const first = await remoteGit(
        [
          "fetch",
          "--quiet",
          "--no-tags",
          "--no-write-fetch-head",
          "--",
          url,
          `+${commit}:${pin}`,
          "+refs/tags/*:refs/tags/*",
        ],
        opts,
      );
      if (first.cancelled) throw new RemoteGitError("git fetch cancelled", first);
      if (first.exitCode !== 0) {
        this.stats.submoduleFetches++;
        await remoteGitOk(
          [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
          ],
          opts,
        );
        if (!(await this.#hasCommit(mirror, commit)))
          throw new Error(
            `submodule commit ${commit} is not on ${url} (the superproject records a commit its remote lacks)`,
          );
      }
    }
    // The pin keeps every recorded commit (and so later fetches negotiate against it).
    await remoteGitOk(["update-ref", pin, commit], this.#gitOpts({ cwd: mirror }));
    return fetched;
  }

  #lfsAvailable(): Promise<boolean> {
    this.#lfsInstalled ??= remoteGit(["lfs", "version"], this.#gitOpts({})).then(
      (r) => r.exitCode === 0,
      () => false,
    );
    return this.#lfsInstalled;
  }

  /**
   * Git LFS content for a job repository whose `.gitattributes` use the LFS filter: fetched
   * into the mirror's LFS store (shared by later jobs) from the endpoint of the service's own
   * remote (a `.lfsconfig` in the tree cannot send it elsewhere: command-line config wins), then
   * checked out. The job's repository gets the LFS filter in its own config, as `git lfs
   * install --local` would, so the files read as unchanged. Returns the files materialized;
   * null (and a note) when git-lfs is not installed.
   */
  async #lfs(
    dir: string,
    mirror: string,
    remoteUrl: string,
    attributes: string[],
    input: PrepareInput,
    where: string,
    notes: string[],
  ): Promise<number | null> {
    if (this.#opts.lfs === false || attributes.length === 0) return 0;
    let lfs = false;
    for (const a of attributes) {
      const text = await remoteGit(["cat-file", "blob", `${input.sha}:${a}`], this.#gitOpts({ cwd: dir }));
      if (text.exitCode === 0 && usesLfs(text.stdout)) lfs = true;
    }
    if (!lfs) return 0;
    const label = where ? `submodule ${where}` : "the repository";
    if (!(await this.#lfsAvailable())) {
      notes.push(
        `${label} uses Git LFS but git-lfs is not installed on this worker: LFS files are left as pointers`,
      );
      return null;
    }
    const lfsUrl = lfsUrlOf(remoteUrl);
    // Command-line config also reaches git-lfs's look into a local remote: the store stays out of it.
    const cfg = ["-c", `lfs.url=${lfsUrl}`, "-c", "lfs.locksverify=false"];
    const opts = this.#gitOpts({
      cwd: dir,
      remoteUrl: lfsUrl,
      ...(input.token ? { token: input.token } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    for (const [k, v] of [
      ["filter.lfs.process", "git-lfs filter-process"],
      ["filter.lfs.clean", "git-lfs clean -- %f"],
      ["filter.lfs.smudge", "git-lfs smudge -- %f"],
      ["filter.lfs.required", "true"],
    ] as const)
      await remoteGitOk(["config", k, v], this.#gitOpts({ cwd: dir }));
    // git-lfs starts its transfer agents without the command line's config: the endpoint and
    // the store go into the job's config for the fetch (the store is taken out again: the
    // sandbox cannot write the mirror's, the job's own .git/lfs serves its later commands).
    const local = (args: string[]) => remoteGitOk(["config", ...args], this.#gitOpts({ cwd: dir }));
    await local(["lfs.url", lfsUrl]);
    // Its file transfer agent only looks at named remotes.
    await local(["remote.origin.url", remoteUrl]);
    await local(["lfs.storage", join(mirror, "lfs")]);
    this.stats.lfsFetches++;
    try {
      await remoteGitOk([...cfg, "lfs", "fetch"], opts);
      await remoteGitOk([...cfg, "lfs", "checkout"], opts);
    } finally {
      await local(["--unset", "lfs.storage"]);
    }
    const files = await remoteGitOk([...cfg, "lfs", "ls-files", "--name-only"], opts);
    return files.split("\n").filter(Boolean).length;
  }

  async remove(ws: Workspace): Promise<void> {
    try {
      if (ws.cache?.treeLock && this.#opts.buildCache?.buildTreeDirs?.length)
        await stashBuildTree(ws, this.#opts.buildCache.buildTreeDirs).catch(() => {});
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

/**
 * A job's lease on the build cache of its repository and configuration: a ccache folder bound
 * read-write into the sandbox at the same path, and the variables that point ccache at it.
 * Cheap to open: it records how many jobs used it before, nothing is walked.
 */
export async function openBuildCache(
  o: BuildCacheOptions,
  installationId: number,
  repo: RepoRef,
  config?: string,
  /** The job's work tree as the sandbox sees it (CCACHE_BASEDIR). */
  workTree?: string,
): Promise<BuildCacheLease> {
  const dir = buildCacheDir(o.root, installationId, repo, config);
  const ccache = join(dir, "ccache");
  await mkdir(ccache, { recursive: true });
  const metaPath = join(dir, "autofix-cache.json");
  const meta = await readFile(metaPath, "utf8")
    .then((t) => JSON.parse(t) as { jobs?: number })
    .catch(() => ({}) as { jobs?: number });
  const before = typeof meta.jobs === "number" && meta.jobs >= 0 ? meta.jobs : 0;
  await writeFile(metaPath, `${JSON.stringify({ jobs: before + 1 })}\n`);
  if (o.owner) {
    const { chown } = await import("node:fs/promises");
    await chown(dir, o.owner.uid, o.owner.gid);
    await chown(ccache, o.owner.uid, o.owner.gid);
  }
  let entries = 0;
  try {
    entries = (await readdir(ccache)).filter((n) => n !== "ccache.conf" && n !== "tmp").length;
  } catch {
    entries = 0;
  }
  return {
    dir,
    mounts: [{ source: ccache, target: ccache }],
    env: {
      CCACHE_DIR: ccache,
      // Paths below the workspace hash as relative ones: a new workspace folder per job still hits.
      CCACHE_NOHASHDIR: "true",
      ...(workTree ? { CCACHE_BASEDIR: workTree } : {}),
      ...(o.maxSize ? { CCACHE_MAXSIZE: o.maxSize } : {}),
    },
    reused:
      before > 0 && entries > 0
        ? `compiler cache warm (used by ${before} job${before === 1 ? "" : "s"} before)`
        : "compiler cache cold (first job of this repository and configuration)",
  };
}

/** Unchanged sources get this mtime (2000-01-01), older than any build output. */
const OLD_MTIME = 946_684_800;

/** Content hashes of the work tree's regular files (not `.git`, not the build folders), without following links. */
async function treeManifest(root: string, skipTop: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name === ".git") continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && skipTop.includes(e.name)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, r);
      else if (e.isFile())
        out[r] = createHash("sha1")
          .update(await readFile(p))
          .digest("hex");
    }
  };
  await walk(root, "");
  return out;
}

/**
 * The repository's build tree into the job's work tree, when no other job holds it: the kept
 * folders are moved in, and every source file whose content is the one the tree was last built
 * from gets an old mtime, so make and ninja rebuild exactly what changed (new and changed files
 * keep their checkout time, newer than every output).
 */
export async function restoreBuildTree(
  ws: Workspace,
  dirs: readonly string[],
  isAlive: (pid: number) => boolean,
): Promise<void> {
  const cache = ws.cache;
  if (!cache) return;
  for (const d of dirs) safePart(d, "build tree folder");
  const lock = join(cache.dir, "tree.lock");
  const taken = await mkdir(lock).then(
    () => true,
    () => false,
  );
  if (!taken) {
    const pid = Number(await readFile(join(lock, "pid"), "utf8").catch(() => "0"));
    if (pid > 0 && pid !== process.pid && isAlive(pid)) {
      cache.reused += "; build tree in use by another job";
      return;
    }
    if (pid === process.pid) {
      cache.reused += "; build tree in use by another job";
      return;
    }
  }
  await writeFile(join(lock, "pid"), String(process.pid));
  cache.treeLock = lock;
  const tree = join(cache.dir, "tree");
  const meta = await readFile(join(tree, "manifest.json"), "utf8")
    .then((t) => JSON.parse(t) as { sha?: string; files?: Record<string, string> })
    .catch(() => null);
  if (!meta?.files || typeof meta.sha !== "string") {
    cache.reused += "; no build tree yet";
    return;
  }
  const moved: string[] = [];
  for (const d of dirs) {
    const from = join(tree, d);
    const to = join(ws.dir, d);
    const src = await lstat(from).catch(() => null);
    const dst = await lstat(to).catch(() => null);
    if (src?.isDirectory() && !dst) {
      await rename(from, to);
      moved.push(d);
    }
  }
  if (moved.length === 0) {
    cache.reused += "; no build tree yet";
    return;
  }
  const now = await treeManifest(ws.dir, dirs);
  let same = 0;
  let changed = 0;
  for (const [rel, hash] of Object.entries(now)) {
    if (meta.files[rel] === hash) {
      await utimes(join(ws.dir, rel), OLD_MTIME, OLD_MTIME);
      same++;
    } else changed++;
  }
  cache.reused += `; build tree (${moved.join(", ")}) reused from ${meta.sha.slice(0, 7)}: ${changed} files to rebuild from, ${same} unchanged`;
}

/**
 * After the job: its build folders go back into the cache with a manifest of the sources as
 * they are now (the model's edits included: a file reverted by the next checkout then counts
 * as changed and is rebuilt). Reads the work tree as plain files, never with git.
 */
export async function stashBuildTree(ws: Workspace, dirs: readonly string[]): Promise<void> {
  const cache = ws.cache;
  if (!cache?.treeLock) return;
  try {
    const tree = join(cache.dir, "tree");
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree, { recursive: true });
    const files = await treeManifest(ws.dir, dirs);
    let kept = 0;
    for (const d of dirs) {
      const st = await lstat(join(ws.dir, d)).catch(() => null);
      if (st?.isDirectory()) {
        await rename(join(ws.dir, d), join(tree, d));
        kept++;
      }
    }
    if (kept > 0) await writeFile(join(tree, "manifest.json"), JSON.stringify({ sha: ws.sha, files }));
  } finally {
    await rm(cache.treeLock, { recursive: true, force: true });
    delete cache.treeLock;
  }
}
