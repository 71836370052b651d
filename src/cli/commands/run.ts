import { access, constants, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import { ProbotOctokit } from "probot";
import { fixPlan, reproducePlan } from "../../agent/gates.js";
import { COMMIT_EMAIL } from "../../agent/index.js";
import { DEFAULT_MODEL } from "../../config/env.js";
import type { RepoConfig } from "../../config/repo-config.js";
import type { FixRequest } from "../../contracts/fix-request.js";
import { loadInfoJson } from "../../contracts/info-json.js";
import {
  type PipelineOutput,
  type PublishTarget,
  readWorkspaceConfig,
  runPipeline,
} from "../../pipeline/run.js";
import { createHostExecutor } from "../../sandbox/host.js";
import { redact, redactor, registerEnvSecrets } from "../../shared/redact.js";
import { type CliCommand, type CliIO, EXIT } from "../command.js";
import {
  branchSlug,
  findRepository,
  isInCommit,
  openLocalRepo,
  originUrl,
  prBaseBranch,
} from "../run/local-repo.js";
import { ProgressPrinter, startClock, startLines } from "../run/progress.js";
import { runExitCode, summaryLines } from "../run/summary.js";

/**
 * `autofix run`: the whole pipeline on a local checkout, without Redis or a worker. The
 * person's working tree is never touched: the agent works in a detached git worktree of the
 * repository at the base commit (in a temp folder, removed afterwards); the branches and refs
 * it creates live in the shared repository. With a GitHub token the fix branch is pushed to
 * `origin` and a draft PR opened; `--dry-run` prints what would be published instead.
 */

export interface RunDeps {
  /** The Anthropic client; the SDK reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. */
  client: () => Anthropic;
  /** GitHub API client for the draft PR. */
  octokit: (token: string, baseUrl: string) => ProbotOctokit;
  /** The clock: elapsed times on the terminal, the report's timestamps and name. */
  now: () => Date;
  /** Call `handler` on each Ctrl-C; returns the function that stops listening. */
  onInterrupt: (handler: () => void) => () => void;
  /** Leave at once (a second Ctrl-C). */
  forceExit: (code: number) => void;
  /** Parent folder of the temporary worktree and credential helper. */
  tmpDir: () => string;
}

export const defaultRunDeps: RunDeps = {
  client: () => new Anthropic(),
  octokit: (token, baseUrl) => new ProbotOctokit({ auth: { token }, baseUrl }) as ProbotOctokit,
  now: () => new Date(),
  onInterrupt: (handler) => {
    process.on("SIGINT", handler);
    return () => process.off("SIGINT", handler);
  },
  forceExit: (code) => process.exit(code),
  tmpDir: () => tmpdir(),
};

const USAGE =
  "autofix run [info.json] [--repo PATH] [--out DIR] [--dry-run] [--base REF] [--github-repo OWNER/NAME]";

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported for tests)

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

/** Why `dir` cannot hold the report (it, or the nearest folder above it that exists, must be writable), or null. */
async function writableFolder(dir: string): Promise<string | null> {
  let d = dir;
  for (;;) {
    const st = await stat(d).catch(() => null);
    if (st) {
      if (!st.isDirectory()) return `${d} is not a folder`;
      return access(d, constants.W_OK).then(
        () => null,
        () => `${d} is not writable`,
      );
    }
    const up = dirname(d);
    if (up === d) return "no existing parent folder";
    d = up;
  }
}

// ---------------------------------------------------------------------------------------------

interface Prepared {
  request: FixRequest;
  notes: string[];
  repo: string;
  baseRef: string;
  baseSha: string;
  outDir: string;
  token: string | undefined;
  target: {
    owner: string;
    repo: string;
    apiBase: string;
    remoteUrl: string;
    baseBranch: string;
  } | null;
}

interface Options {
  file: string;
  repo: string | undefined;
  out: string | undefined;
  dryRun: boolean;
  base: string | undefined;
  githubRepo: string | undefined;
}

/** Every check that needs no model and no network; problems are collected, not thrown. */
async function prepare(
  o: Options,
  io: CliIO,
): Promise<{ ok: true; p: Prepared } | { ok: false; problems: string[]; notes: string[] }> {
  const problems: string[] = [];
  const env = io.env;
  const repoArg = resolve(io.cwd, o.repo ?? ".");
  const baseRef = o.base ?? "HEAD";

  // The repository: a git checkout with a commit at --base.
  let repo: string | null = null;
  let baseSha = "";
  const found = await findRepository(repoArg, baseRef);
  if (found.root === null) {
    problems.push(
      `${repoArg} is not a git repository (${found.whyNot}); run in a checkout or pass --repo PATH`,
    );
  } else {
    repo = found.root;
    if (found.baseSha) baseSha = found.baseSha;
    else if (o.base === undefined)
      problems.push(`${repo} has no commit yet: commit the code first (the agent works on a commit)`);
    else problems.push(`--base ${baseRef} is not a commit in ${repo}`);
  }

  // info.json, checked against the repository's root.
  const infoPath = resolve(io.cwd, o.file);
  const info = loadInfoJson(infoPath, { repoRoot: repo ?? repoArg });
  if (!info.ok) for (const p of info.problems) problems.push(`${o.file}: ${p}`);
  const request = info.ok ? info.request : null;
  if (request?.existingTestPath && repo && baseSha) {
    if (!(await isInCommit(repo, baseSha, request.existingTestPath)))
      problems.push(
        `${o.file}: "existing-test-path" ${request.existingTestPath} is not in the base commit ${baseSha.slice(0, 10)} (the run uses committed files only: commit it first)`,
      );
  }

  // The model.
  if (!env.ANTHROPIC_API_KEY && !env.ANTHROPIC_AUTH_TOKEN)
    problems.push(
      "ANTHROPIC_API_KEY is not set: the agent cannot call Claude (export ANTHROPIC_API_KEY=...)",
    );

  // GitHub: logs from a URL and publishing both need a token.
  const token = env.GITHUB_TOKEN || env.GH_TOKEN || undefined;
  if (request?.url && !token)
    problems.push(
      `${o.file} gives a "url": reading its Actions logs needs GITHUB_TOKEN or GH_TOKEN (e.g. GH_TOKEN="$(gh auth token)"), or paste the log as "raw-logs"`,
    );
  if (o.githubRepo !== undefined && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(o.githubRepo))
    problems.push(`--github-repo must be OWNER/NAME; got ${JSON.stringify(o.githubRepo)}`);

  let target: Prepared["target"] = null;
  if (token && repo) {
    const origin = await originUrl(repo);
    const gheHost = env.GHE_HOST?.trim() || undefined;
    const hosts = ["github.com", ...(gheHost ? [gheHost] : [])];
    const parsed = origin ? parseGitHubRemote(origin, hosts) : null;
    const override = o.githubRepo?.split("/");
    if (!origin) {
      problems.push(
        `a GitHub token is set, so the fix would be pushed to the repository's "origin", but ${repo} has no origin remote; add one, use --dry-run, or unset GITHUB_TOKEN/GH_TOKEN to keep everything local`,
      );
    } else if (!parsed && !override) {
      problems.push(
        `cannot tell the GitHub repository from origin (${redact(origin)}): it is not on ${hosts.join(" or ")}; pass --github-repo OWNER/NAME (or set GHE_HOST)`,
      );
    } else {
      const onGhe =
        gheHost !== undefined && (override ? true : parsed?.host === hosts[1]!.replace(/:\d+$/, ""));
      const protocol = env.GHE_PROTOCOL === "http" ? "http" : "https";
      const apiBase = onGhe ? `${protocol}://${gheHost}/api/v3` : "https://api.github.com";
      const baseBranch = await prBaseBranch(repo, o.base);
      if (!baseBranch)
        problems.push(
          "cannot tell which branch the draft PR should target (detached HEAD and no origin/HEAD); pass --base BRANCH",
        );
      else
        target = {
          owner: override?.[0] ?? parsed!.owner,
          repo: override?.[1] ?? parsed!.repo,
          apiBase,
          remoteUrl: origin,
          baseBranch,
        };
    }
  }

  // The report folder must be writable before anything costs money.
  const outDir = resolve(io.cwd, o.out ?? "outputs");
  const outProblem = await writableFolder(outDir);
  if (outProblem) problems.push(`cannot write the report to ${outDir}: ${outProblem}`);

  if (problems.length > 0 || !request || !repo) return { ok: false, problems, notes: info.notes };
  return {
    ok: true,
    p: { request, notes: info.notes, repo, baseRef, baseSha, outDir, token, target },
  };
}

function describePlan(req: FixRequest, config: RepoConfig): { text: string; reproduce: number; fix: number } {
  const rp = reproducePlan(req.deterministic, config.stability);
  const fp = fixPlan(req.deterministic, config.stability);
  const text = req.deterministic
    ? `deterministic: the reproduction must fail ${rp.runs}/${rp.runs} runs on the base, the fix pass ${fp.runs}/${fp.runs}`
    : `non-deterministic: a stress reproduction must fail at least once in ${rp.runs} runs on the base, the fix pass ${fp.runs}/${fp.runs}`;
  return { text, reproduce: rp.runs, fix: fp.runs };
}

export function createRunCommand(overrides: Partial<RunDeps> = {}): CliCommand {
  const deps: RunDeps = { ...defaultRunDeps, ...overrides };
  return {
    name: ["run"],
    usage: USAGE,
    summary:
      "run the whole fix locally from an info.json (no Redis): reproduce, fix, prove; push and open a draft PR with GITHUB_TOKEN, or print the plan with --dry-run; the report goes to --out (default outputs/)",
    async run(args, io) {
      let opts: Options;
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
          },
        });
        if (positionals.length > 1) throw new Error(`one info.json at most; got ${positionals.join(" ")}`);
        opts = {
          file: positionals[0] ?? "info.json",
          repo: values.repo,
          out: values.out,
          dryRun: values["dry-run"] === true,
          base: values.base,
          githubRepo: values["github-repo"],
        };
      } catch (err) {
        io.err(`${(err as Error).message}\nusage: ${USAGE}`);
        return EXIT.badInput;
      }

      registerEnvSecrets(io.env);
      const prep = await prepare(opts, io);
      for (const n of prep.ok ? prep.p.notes : prep.notes) io.out(`note: ${n}`);
      if (!prep.ok) {
        io.err(`cannot start (${prep.problems.length} problem${prep.problems.length > 1 ? "s" : ""}):`);
        for (const p of prep.problems) io.err(redact(`  - ${p}`));
        io.err(`usage: ${USAGE}`);
        return EXIT.badInput;
      }
      const p = prep.p;
      if (p.token) redactor.addSecret(p.token);

      const clock = startClock(deps.now);
      const local = await openLocalRepo(p.repo, deps.tmpDir());
      const workspace = local.workspace;
      const say = (l: string) => io.out(redact(l));

      try {
        const notAdded = await local.addWorktree(p.baseSha);
        if (notAdded) {
          io.err(redact(notAdded));
          return EXIT.failed;
        }
        let config: RepoConfig;
        try {
          config = (await readWorkspaceConfig(workspace)).config;
        } catch (err) {
          io.err(
            redact(`cannot start: ${(err as Error).message} (at ${p.baseRef} ${p.baseSha.slice(0, 10)})`),
          );
          return EXIT.badInput;
        }
        const plan = describePlan(p.request, config);
        const { name: branch, reused } = await local.chooseBranch(branchSlug(p.request.prompt));
        const model = io.env.AUTOFIX_MODEL?.trim() || DEFAULT_MODEL;

        let publish: PublishTarget | null = null;
        if (p.token && p.target) {
          const helperPath = await local.credentialHelper();
          const token = p.token;
          publish = {
            octokit: deps.octokit(token, p.target.apiBase),
            owner: p.target.owner,
            repo: p.target.repo,
            baseBranch: p.target.baseBranch,
            remoteUrl: p.target.remoteUrl,
            helperPath,
            token: async () => token,
            appEmails: [COMMIT_EMAIL],
          };
        }

        for (const l of startLines({
          prompt: p.request.prompt,
          repo: p.repo,
          baseRef: p.baseRef,
          baseSha: p.baseSha,
          failure: plan.text,
          url: p.request.url,
          existingTestPath: p.request.existingTestPath,
          model,
          branch: { name: branch, reused },
          publish,
          dryRun: opts.dryRun,
          outDir: p.outDir,
        }))
          say(l);

        const printer = new ProgressPrinter(io.out, clock.elapsed, {
          reproduce: plan.reproduce,
          fix: plan.fix,
        });
        const ctrl = new AbortController();
        let interrupts = 0;
        const stopListening = deps.onInterrupt(() => {
          interrupts++;
          if (interrupts === 1) {
            printer.line(
              "interrupted: stopping the run (Ctrl-C again to quit at once); the report is still written",
            );
            ctrl.abort(new Error("interrupted"));
          } else {
            io.err(
              `quitting now; the worktree ${workspace} may be left behind (git worktree prune removes it)`,
            );
            deps.forceExit(130);
          }
        });

        let out: PipelineOutput;
        const executor = createHostExecutor({ workspace, env: {}, cards: [], jobId: "local" });
        try {
          out = await runPipeline({
            runId: `local-${clock.startedAt.toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
            origin: `local run (autofix run) in ${p.repo}`,
            request: p.request,
            executor,
            baseSha: p.baseSha,
            branch,
            reportDir: p.outDir,
            publish,
            dryRun: opts.dryRun,
            ...(p.token ? { logsToken: p.token } : {}),
            client: deps.client(),
            model,
            signal: ctrl.signal,
            onProgress: (e) => printer.apply(e),
            onPublish: () => printer.line(`publish: pushing ${branch} and opening the draft PR`),
            environment: {
              mode: "local (autofix run)",
              repository: p.repo,
              base: `${p.baseRef} (${p.baseSha})`,
            },
            now: deps.now,
          });
        } finally {
          stopListening();
          await executor.dispose();
        }
        for (const l of summaryLines(out, branch, opts.dryRun)) say(l);
        return runExitCode(out);
      } catch (err) {
        io.err(redact(`autofix run failed: ${(err as Error).message}`));
        return EXIT.failed;
      } finally {
        const problem = await local.cleanup();
        if (problem) io.err(redact(`warning: ${problem}`));
      }
    },
  };
}

export const runLocalCommand = createRunCommand();
