import { randomBytes } from "node:crypto";
import { constants, open, realpath, rm, stat, statfs } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { fixPlan, reproducePlan } from "../../agent/gates.js";
import { DEFAULT_MODEL } from "../../config/env.js";
import { type RepoConfig, repoConfigSchema } from "../../config/repo-config.js";
import { readRunConfig } from "../../config/run-config.js";
import type { FixRequest } from "../../contracts/fix-request.js";
import { type InfoJsonResult, loadInfoJson } from "../../contracts/info-json.js";
import type { SandboxMode } from "../../sandbox/select.js";
import { redact } from "../../shared/redact.js";
import {
  findRepository,
  isIgnored,
  isInCommit,
  originUrl,
  prBaseBranch,
  type RepositoryFact,
} from "./local-repo.js";

/**
 * Everything `autofix run` checks before anything costs money: the arguments, the repository
 * and base commit, the info.json, the model's key, the GitHub token and target, the report
 * folder. The facts are gathered first (git, the file system); deciding on them is pure, and
 * every problem is collected so the person sees them all at once.
 */

export const USAGE =
  "autofix run [info.json] [--repo PATH] [--out DIR] [--dry-run] [--base REF] [--github-repo OWNER/NAME] [--sandbox auto|bwrap|container|none]";

const SANDBOX_MODES: readonly SandboxMode[] = ["auto", "bwrap", "container", "none"];

export interface RunOptions {
  file: string;
  repo: string | undefined;
  out: string | undefined;
  dryRun: boolean;
  base: string | undefined;
  githubRepo: string | undefined;
  /** --sandbox; unset: AUTOFIX_SANDBOX, else auto. */
  sandbox: SandboxMode | undefined;
  /** --budget KEY=VALUE: overrides of `.github/autofix.yml`'s budgets for this run (the action's budget inputs). */
  budgets?: Record<string, number>;
}

/** The budget keys --budget may set (those of `budgets:` in .github/autofix.yml). */
export const BUDGET_KEYS = Object.keys(
  (repoConfigSchema.shape.budgets.unwrap() as unknown as { shape: Record<string, unknown> }).shape,
);

/** The config with --budget overrides applied, validated like the file's budgets. Pure. */
export function applyBudgets(
  config: RepoConfig,
  budgets: Record<string, number> | undefined,
): { ok: true; config: RepoConfig } | { ok: false; problem: string } {
  if (!budgets || Object.keys(budgets).length === 0) return { ok: true, config };
  const r = repoConfigSchema.shape.budgets.safeParse({ ...config.budgets, ...budgets });
  if (!r.success)
    return {
      ok: false,
      problem: `--budget: ${r.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
    };
  return { ok: true, config: { ...config, budgets: r.data } };
}

/** The options from the command's arguments, or the parser's complaint. */
export function parseRunArgs(
  args: string[],
): { ok: true; options: RunOptions } | { ok: false; error: string } {
  try {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        repo: { type: "string" },
        out: { type: "string" },
        "dry-run": { type: "boolean" },
        base: { type: "string" },
        "github-repo": { type: "string" },
        sandbox: { type: "string" },
        budget: { type: "string", multiple: true },
      },
    });
    const budgets: Record<string, number> = {};
    for (const b of values.budget ?? []) {
      const m = /^([a-z_]+)=([0-9]+(?:\.[0-9]+)?)$/.exec(b);
      if (!m || !BUDGET_KEYS.includes(m[1]!))
        throw new Error(
          `--budget takes KEY=NUMBER with KEY one of ${BUDGET_KEYS.join(", ")}; got ${JSON.stringify(b)}`,
        );
      budgets[m[1]!] = Number(m[2]);
    }
    const sandbox = values.sandbox;
    if (sandbox !== undefined && !SANDBOX_MODES.includes(sandbox as SandboxMode))
      throw new Error(`--sandbox must be one of ${SANDBOX_MODES.join(", ")}; got ${JSON.stringify(sandbox)}`);
    if (positionals.length > 1) throw new Error(`one info.json at most; got ${positionals.join(" ")}`);
    return {
      ok: true,
      options: {
        file: positionals[0] ?? "info.json",
        repo: values.repo,
        out: values.out,
        dryRun: values["dry-run"] === true,
        base: values.base,
        githubRepo: values["github-repo"],
        sandbox: sandbox as SandboxMode | undefined,
        ...(Object.keys(budgets).length ? { budgets } : {}),
      },
    };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export interface GitHubRepoRef {
  owner: string;
  repo: string;
  host: string;
}

/**
 * OWNER/NAME from a remote URL on one of `hosts` (github.com or the GHE host): https, ssh://,
 * git:// and the scp form `git@host:owner/repo.git`. Null for anything else (a file:// URL,
 * another host).
 */
export function parseGitHubRemote(url: string, hosts: readonly string[]): GitHubRepoRef | null {
  const u = url.trim();
  let host: string;
  let path: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      return null;
    }
    if (!["https:", "http:", "ssh:", "git:", "git+ssh:", "ssh+git:"].includes(parsed.protocol)) return null;
    host = parsed.hostname;
    path = decodeURIComponent(parsed.pathname);
  } else {
    const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(u);
    if (!scp) return null;
    host = scp[1]!;
    path = scp[2]!;
  }
  const wanted = hosts.map((h) => h.toLowerCase().replace(/:\d+$/, ""));
  if (!wanted.includes(host.toLowerCase())) return null;
  const m = /^\/?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(path);
  if (!m) return null;
  return { owner: m[1]!, repo: m[2]!, host: host.toLowerCase() };
}

/** The token that reads a `url`'s logs and publishes: GITHUB_TOKEN, else GH_TOKEN. */
export function githubToken(env: NodeJS.ProcessEnv): string | undefined {
  return env.GITHUB_TOKEN || env.GH_TOKEN || undefined;
}

/** The folders the options name, resolved against the current folder. */
export function runPaths(o: RunOptions, cwd: string): { repoArg: string; infoPath: string; outDir: string } {
  return {
    repoArg: resolve(cwd, o.repo ?? "."),
    infoPath: resolve(cwd, o.file),
    outDir: resolve(cwd, o.out ?? "outputs"),
  };
}

/** What preflight found out about the machine; the input of decidePreflight. */
export interface PreflightFacts {
  repository: RepositoryFact;
  info: InfoJsonResult;
  /** Whether the info.json's existing-test-path is in the base commit (asked when both exist). */
  existingTestInBase?: boolean;
  /** The origin remote's URL, null when there is none (asked when a token is set). */
  origin?: string | null;
  /** The branch the draft PR would target (asked when origin exists). */
  prBaseBranch?: string | null;
  /** Why the report folder cannot be written, or null. */
  outProblem: string | null;
  /** Whether --repo names something that exists (absent: it does). */
  repoExists?: boolean;
  /**
   * The report folder relative to the repository's working tree when it is inside it and git
   * does not ignore it (the run would leave it untracked there); absent otherwise.
   */
  outUntrackedInRepo?: string;
}

/** Where a proven fix is published: the GitHub repository and the PR's base branch. */
export interface PublishRepo {
  owner: string;
  repo: string;
  apiBase: string;
  remoteUrl: string;
  baseBranch: string;
}

/** Everything the run needs once preflight passed. */
export interface RunPlan {
  request: FixRequest;
  repo: string;
  baseRef: string;
  baseSha: string;
  outDir: string;
  dryRun: boolean;
  model: string;
  token: string | undefined;
  /** Null without a token: everything stays local. */
  target: PublishRepo | null;
  /** Where the model's commands run (--sandbox, else AUTOFIX_SANDBOX, else auto). */
  sandbox: SandboxMode;
}

export type Preflight =
  | { ok: true; plan: RunPlan; notes: string[] }
  | { ok: false; problems: string[]; notes: string[] };

/** Gather the facts preflight decides on: git on the repository, the info.json, the report folder. */
export async function gatherFacts(
  o: RunOptions,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<PreflightFacts> {
  const paths = runPaths(o, cwd);
  const repoExists = (await stat(paths.repoArg).catch(() => null)) !== null;
  const repository = repoExists
    ? await findRepository(paths.repoArg, o.base ?? "HEAD")
    : { root: null, whyNot: "it does not exist" };
  const info = loadInfoJson(paths.infoPath, { repoRoot: repository.root ?? paths.repoArg });
  const facts: PreflightFacts = { repository, info, outProblem: null, repoExists };
  const testPath = info.ok ? info.request.existingTestPath : undefined;
  if (testPath && repository.root && repository.baseSha)
    facts.existingTestInBase = await isInCommit(repository.root, repository.baseSha, testPath);
  if (githubToken(env) && repository.root) {
    facts.origin = await originUrl(repository.root);
    if (facts.origin || o.githubRepo) facts.prBaseBranch = await prBaseBranch(repository.root, o.base);
  }
  facts.outProblem = await writableFolder(paths.outDir);
  if (!facts.outProblem && repository.root) {
    const inside = await untrackedInside(repository.root, paths.outDir);
    if (inside) facts.outUntrackedInRepo = inside;
  }
  return facts;
}

/** The plan, or every problem found in `facts`, in the order a person fixes them. */
export function decidePreflight(
  o: RunOptions,
  env: NodeJS.ProcessEnv,
  cwd: string,
  facts: PreflightFacts,
): Preflight {
  const problems: string[] = [];
  const paths = runPaths(o, cwd);
  const baseRef = o.base ?? "HEAD";
  const { repository, info } = facts;
  const repo = repository.root;
  const baseSha = repository.root === null ? null : repository.baseSha;

  // The repository: a git checkout with a commit at --base.
  if (facts.repoExists === false) problems.push(`--repo ${paths.repoArg} does not exist`);
  else if (repository.root === null)
    problems.push(
      `${paths.repoArg} is not a git repository (${repository.whyNot}); run in a checkout or pass --repo PATH`,
    );
  else if (!baseSha) {
    if (o.base === undefined)
      problems.push(`${repo} has no commit yet: commit the code first (the agent works on a commit)`);
    else problems.push(`--base ${baseRef} is not a commit in ${repo}`);
  }

  // info.json, checked against the repository's root.
  if (!info.ok) for (const p of info.problems) problems.push(`${o.file}: ${p}`);
  const request = info.ok ? info.request : null;
  if (request?.existingTestPath && repo && baseSha && facts.existingTestInBase !== true)
    problems.push(
      `${o.file}: "existing-test-path" ${request.existingTestPath} is not in the base commit ${baseSha.slice(0, 10)} (the run uses committed files only: commit it first)`,
    );

  // The model.
  if (!env.ANTHROPIC_API_KEY && !env.ANTHROPIC_AUTH_TOKEN)
    problems.push(
      "ANTHROPIC_API_KEY is not set: the agent cannot call Claude (export ANTHROPIC_API_KEY=...)",
    );

  // GitHub: logs from a URL and publishing both need a token.
  const token = githubToken(env);
  if (request?.url && !token)
    problems.push(
      `${o.file} gives a "url": reading its Actions logs needs GITHUB_TOKEN or GH_TOKEN (e.g. GH_TOKEN="$(gh auth token)"), or paste the log as "raw-logs"`,
    );
  if (o.githubRepo !== undefined && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(o.githubRepo))
    problems.push(`--github-repo must be OWNER/NAME; got ${JSON.stringify(o.githubRepo)}`);

  let target: PublishRepo | null = null;
  if (token && repo) {
    const origin = facts.origin ?? null;
    const gheHost = env.GHE_HOST?.trim() || undefined;
    const hosts = ["github.com", ...(gheHost ? [gheHost] : [])];
    const parsed = origin ? parseGitHubRemote(origin, hosts) : null;
    const override = o.githubRepo?.split("/");
    if (!origin && !override) {
      problems.push(
        `a GitHub token is set, so the fix would be pushed to the repository's "origin", but ${repo} has no origin remote; add one, pass --github-repo OWNER/NAME, or unset GITHUB_TOKEN/GH_TOKEN to keep everything local`,
      );
    } else if (!parsed && !override) {
      problems.push(
        `cannot tell the GitHub repository from origin (${redact(origin ?? "")}): it is not on ${hosts.join(" or ")}; pass --github-repo OWNER/NAME (or set GHE_HOST)`,
      );
    } else {
      const onGhe =
        gheHost !== undefined && (override ? true : parsed?.host === hosts[1]!.replace(/:\d+$/, ""));
      const protocol = env.GHE_PROTOCOL === "http" ? "http" : "https";
      const apiBase = onGhe ? `${protocol}://${gheHost}/api/v3` : "https://api.github.com";
      const webBase = onGhe ? `${protocol}://${gheHost}` : "https://github.com";
      const baseBranch = facts.prBaseBranch ?? null;
      if (!baseBranch)
        problems.push(
          "cannot tell which branch the draft PR should target (detached HEAD and no origin/HEAD); pass --base BRANCH",
        );
      else
        target = {
          owner: override?.[0] ?? parsed!.owner,
          repo: override?.[1] ?? parsed!.repo,
          apiBase,
          // Without origin, --github-repo names where to push.
          remoteUrl: origin ?? `${webBase}/${override![0]}/${override![1]}.git`,
          baseBranch,
        };
    }
  }

  // The sandbox: the flag wins over the environment.
  const envSandbox = env.AUTOFIX_SANDBOX?.trim() || undefined;
  if (o.sandbox === undefined && envSandbox && !SANDBOX_MODES.includes(envSandbox as SandboxMode))
    problems.push(
      `AUTOFIX_SANDBOX must be one of ${SANDBOX_MODES.join(", ")}; got ${JSON.stringify(envSandbox)}`,
    );
  const sandbox = o.sandbox ?? ((envSandbox as SandboxMode | undefined) || "auto");

  // The report folder must be writable before anything costs money.
  if (facts.outProblem) problems.push(`cannot write the report to ${paths.outDir}: ${facts.outProblem}`);

  const notes = [...info.notes];
  if (facts.outUntrackedInRepo !== undefined)
    notes.push(
      `${facts.outUntrackedInRepo}/ is inside the repository and not ignored: add it to .gitignore or pass --out`,
    );
  if (problems.length > 0 || !request || !repo || !baseSha) return { ok: false, problems, notes };
  return {
    ok: true,
    plan: {
      request,
      repo,
      baseRef,
      baseSha,
      outDir: paths.outDir,
      dryRun: o.dryRun,
      model: env.AUTOFIX_MODEL?.trim() || DEFAULT_MODEL,
      token,
      target,
      sandbox,
    },
    notes,
  };
}

/** Every check that needs no model, no network and no workspace. */
export async function preflight(o: RunOptions, env: NodeJS.ProcessEnv, cwd: string): Promise<Preflight> {
  return decidePreflight(o, env, cwd, await gatherFacts(o, env, cwd));
}

/** How many runs each gate makes, and the wording for the plan. */
export function describeGates(
  req: Pick<FixRequest, "deterministic">,
  config: Pick<RepoConfig, "stability">,
): { text: string; reproduce: number; fix: number } {
  const rp = reproducePlan(req.deterministic, config.stability);
  const fp = fixPlan(req.deterministic, config.stability);
  const text = req.deterministic
    ? `deterministic: the reproduction must fail ${rp.runs}/${rp.runs} runs on the base, the fix pass ${fp.runs}/${fp.runs}`
    : `non-deterministic: a stress reproduction must fail at least once in ${rp.runs} runs on the base, the fix pass ${fp.runs}/${fp.runs}`;
  return { text, reproduce: rp.runs, fix: fp.runs };
}

/**
 * The last check, once the run's repository exists: the repository's own `.github/autofix.yml` at the
 * base commit, and the gates it implies.
 */
export async function preflightWorkspace(
  plan: Pick<RunPlan, "request" | "baseRef" | "baseSha">,
  workspace: string,
): Promise<
  | { ok: true; config: RepoConfig; gates: { text: string; reproduce: number; fix: number } }
  | { ok: false; problem: string }
> {
  let config: RepoConfig;
  try {
    config = (await readRunConfig(workspace)).config;
  } catch (err) {
    return {
      ok: false,
      problem: `cannot start: ${(err as Error).message} (at ${plan.baseRef} ${plan.baseSha.slice(0, 10)})`,
    };
  }
  return { ok: true, config, gates: describeGates(plan.request, config) };
}

/**
 * File systems that hold no files of ours (kernel interfaces): a report cannot go there, and
 * some of them accept a create and then fail or hang later. `statfs` magic numbers (linux/magic.h).
 */
const SPECIAL_FILE_SYSTEMS: Readonly<Record<number, string>> = {
  40864: "proc",
  1650812274: "sysfs",
  7377: "devpts",
  2613483: "cgroup",
  1667723888: "cgroup2",
  1684170528: "debugfs",
  1953653091: "tracefs",
  1935894131: "securityfs",
  3405662737: "bpf",
  1853056627: "nsfs",
  1112100429: "binfmt_misc",
  1733912937: "rpc_pipefs",
  4185718668: "selinuxfs",
  1346981957: "pipefs",
  1650746742: "bdev",
};

/** How long the probe file may take before the folder counts as not writable (a hung mount). */
export const PROBE_TIMEOUT_MS = 5_000;

/**
 * Why `dir` cannot hold the report, or null. The nearest folder that exists (the report
 * creates the rest) must be a folder on an ordinary file system where a file can really be
 * created: a probe file is created, written and removed there, within PROBE_TIMEOUT_MS.
 */
export async function writableFolder(dir: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | null> {
  let d = dir;
  for (;;) {
    const st = await stat(d).catch(() => null);
    if (st) {
      if (!st.isDirectory()) return `${d} is not a folder`;
      return probeFolder(d, timeoutMs);
    }
    const up = dirname(d);
    if (up === d) return "no existing parent folder";
    d = up;
  }
}

async function probeFolder(d: string, timeoutMs: number): Promise<string | null> {
  const fs = await statfs(d).catch(() => null);
  const special = fs ? SPECIAL_FILE_SYSTEMS[Number(fs.type)] : undefined;
  if (special) return `${d} is on the kernel's ${special} file system, which holds no reports`;
  const probe = join(d, `.autofix-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  const attempt = (async () => {
    const fh = await open(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await fh.writeFile("autofix\n");
    } finally {
      await fh.close();
    }
    await rm(probe, { force: true });
    return null;
  })().catch((err: NodeJS.ErrnoException) => {
    void rm(probe, { force: true }).catch(() => {});
    return `${d} is not writable (${err.code ?? err.message})`;
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((res) => {
    timer = setTimeout(
      () => res(`${d} did not let a file be created within ${timeoutMs / 1000} s (a hung mount?)`),
      timeoutMs,
    );
    timer.unref();
  });
  try {
    return await Promise.race([attempt, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `outDir` relative to the working tree of `root` when it is inside it and git does not ignore
 * it, else null. Both paths are compared after resolving symbolic links (of the part that exists).
 */
async function untrackedInside(root: string, outDir: string): Promise<string | null> {
  const real = async (p: string): Promise<string> => {
    const r = await realpath(p).catch(() => null);
    if (r) return r;
    const up = dirname(p);
    return up === p ? p : join(await real(up), p.slice(up.length + (up.endsWith(sep) ? 0 : 1)));
  };
  const [top, out] = await Promise.all([real(root), real(outDir)]);
  const rel = relative(top, out);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || resolve(top, rel) !== out) return null;
  if (rel.split(sep)[0] === ".git") return null;
  // A file in the folder stands for the report: a pattern "outputs/" matches only folders.
  return (await isIgnored(top, `${rel.split(sep).join("/")}/autofix-report.md`))
    ? null
    : rel.split(sep).join("/");
}
