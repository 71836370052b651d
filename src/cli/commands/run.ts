import { tmpdir } from "node:os";
import Anthropic from "@anthropic-ai/sdk";
import { ProbotOctokit } from "probot";
import { COMMIT_EMAIL } from "../../agent/index.js";
import { readSettings } from "../../config/env.js";
import { type PipelineOutput, type PublishTarget, runPipeline } from "../../pipeline/run.js";
import { LOCAL_RUN_MODE } from "../../publish/report.js";
import type { JobExecutor } from "../../sandbox/executor.js";
import { createSandbox, sandboxSettingsOf } from "../../sandbox/factory.js";
import { describeBackend } from "../../sandbox/select.js";
import { redact, redactor, registerEnvSecrets } from "../../shared/redact.js";
import {
  type CliCommand,
  type CliIO,
  type CommandSpec,
  EXIT,
  helpText,
  tidyParseMessage,
  wantsHelp,
} from "../command.js";
import { branchSlug, type LocalRepo, openLocalRepo } from "../run/local-repo.js";
import {
  applyBudgets,
  parseRunArgs,
  preflight,
  preflightWorkspace,
  type RunPlan,
  USAGE,
} from "../run/preflight.js";
import { ProgressPrinter, startClock, startLines } from "../run/progress.js";
import { runExitCode, summaryLines } from "../run/summary.js";

/**
 * `autofix run`: the whole pipeline on a local checkout, without Redis or a worker. It reads
 * as its steps: preflight (every check before anything costs money) -> the person's
 * repository (a temporary repository of the run's own at the base commit, the fix branch) -> the job's executor
 * -> the pipeline -> the summary -> cleanup. With a GitHub token the fix branch is pushed to
 * `origin` and a draft PR opened; `--dry-run` prints what would be published instead.
 */

export interface RunDeps {
  /** The Anthropic client; the SDK reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. */
  client: () => Anthropic;
  /** GitHub API client for the draft PR. */
  octokit: (token: string, baseUrl: string) => ProbotOctokit;
  /** The clock: elapsed times on the terminal, the report's timestamps and name. */
  now: () => Date;
  /**
   * Call `handler` on each Ctrl-C (and SIGTERM, which counts as one) with the signal's name;
   * returns the function that stops listening.
   */
  onInterrupt: (handler: (signal?: string) => void) => () => void;
  /** Leave at once (a second Ctrl-C). */
  forceExit: (code: number) => void;
  /** Parent folder of the run's temporary repository and credential helper. */
  tmpDir: () => string;
  /** The sandbox the model's commands run in (src/sandbox/factory.ts). */
  sandbox: typeof createSandbox;
}

export const defaultRunDeps: RunDeps = {
  client: () => new Anthropic(),
  octokit: (token, baseUrl) => new ProbotOctokit({ auth: { token }, baseUrl }) as ProbotOctokit,
  now: () => new Date(),
  onInterrupt: (handler) => {
    // SIGTERM (a service manager, `timeout`, `kill`) stops the run as the first Ctrl-C does: the
    // report is still written and the temporary folder removed.
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  },
  forceExit: (code) => process.exit(code),
  tmpDir: () => tmpdir(),
  sandbox: createSandbox,
};

/** `autofix run --help` (the options are parsed by parseRunArgs in ../run/preflight.ts). */
const HELP: CommandSpec = {
  usage: USAGE,
  summary:
    "Run the whole fix locally from an info.json, without Redis or a worker: reproduce the failure, fix it, prove the fix. With GITHUB_TOKEN (or GH_TOKEN) the fix branch is pushed to origin and a draft PR opened.",
  options: {
    repo: { type: "string", value: "PATH", help: "the git checkout to fix (default: the current folder)" },
    out: { type: "string", value: "DIR", help: "where the report goes (default outputs/)" },
    "dry-run": { type: "boolean", help: "publish nothing: print the branch and PR that would be made" },
    base: {
      type: "string",
      value: "REF",
      help: "the commit to start from (default HEAD); when it names a branch, also the draft PR's base",
    },
    "github-repo": {
      type: "string",
      value: "OWNER/NAME",
      help: "the GitHub repository to publish to when origin does not tell",
    },
    sandbox: {
      type: "string",
      value: "MODE",
      help: "where the model's commands run: auto, bwrap, container or none (default AUTOFIX_SANDBOX, else auto)",
    },
    budget: {
      type: "string",
      value: "KEY=NUMBER",
      multiple: true,
      help: "override a budget of .github/autofix.yml for this run (reproduce_minutes, fix_minutes, build_minutes, max_turns, max_tokens, max_cost_usd, ...)",
    },
  },
  notes: [
    "info.json defaults to ./info.json; check it first with `autofix validate`.",
    "Needs ANTHROPIC_API_KEY. Ctrl-C (or SIGTERM) stops the run and still writes the report; a second Ctrl-C quits at once.",
    "Exit 0 proven fix, 1 failed, 2 bad input, 3 partial result.",
  ],
};

export function createRunCommand(overrides: Partial<RunDeps> = {}): CliCommand {
  const deps: RunDeps = { ...defaultRunDeps, ...overrides };
  return {
    name: ["run"],
    usage: USAGE,
    summary:
      "run the whole fix locally from an info.json (no Redis): reproduce, fix, prove; push and open a draft PR with GITHUB_TOKEN, or print the plan with --dry-run; the report goes to --out (default outputs/)",
    async run(args, io) {
      if (wantsHelp(args)) {
        for (const l of helpText(HELP)) io.out(l);
        return EXIT.ok;
      }
      const parsed = parseRunArgs(args);
      if (!parsed.ok) {
        io.err(`autofix run: ${tidyParseMessage(parsed.error)}`);
        io.err(`usage: ${USAGE}`);
        io.err('run "autofix run --help" for the options');
        return EXIT.badInput;
      }
      const opts = parsed.options;

      // 1. Preflight: every check that needs no model, no network and no workspace.
      registerEnvSecrets(io.env);
      const pre = await preflight(opts, io.env, io.cwd);
      for (const n of pre.notes) io.out(`note: ${n}`);
      if (!pre.ok) return refuse(io, pre.problems);
      const plan = pre.plan;
      if (plan.token) redactor.addSecret(plan.token);

      // The sandbox, before anything is created: without one, say so and stop (exit 2).
      const settings = readSettings(io.env, "cli").settings;
      const sandboxConfig = sandboxSettingsOf(
        { ...settings, AUTOFIX_SANDBOX: plan.sandbox },
        { name: "--sandbox", none: "--sandbox none" },
      );
      if (sandboxConfig.problems.length > 0) return refuse(io, sandboxConfig.problems);
      const made = await deps.sandbox(sandboxConfig.settings);
      if (!made.ok) return refuse(io, [made.problem]);
      const sandbox = made.sandbox;
      if (sandbox.warning) io.err(`WARNING: ${sandbox.warning}`);

      const clock = startClock(deps.now);
      const say = (l: string) => io.out(redact(l));
      // 2. The person's repository: a temporary repository of the run's own at the base commit.
      const local = await openLocalRepo(plan.repo, deps.tmpDir());
      let executor: JobExecutor | null = null;
      // From here to the end of the cleanup, Ctrl-C and SIGTERM stop the run the same way:
      // the first stops it (the temporary repository and folder are still removed), a second
      // quits at once with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
      const ctrl = new AbortController();
      let printer: ProgressPrinter | null = null;
      const stopListening = listenForInterrupts(
        deps,
        io,
        (l) => (printer ? printer.line(l) : say(l)),
        ctrl,
        local.workspace,
      );
      const interrupted = () => {
        if (!ctrl.signal.aborted) return false;
        io.err("interrupted before the run started: nothing was run; the temporary repository is removed");
        return true;
      };
      try {
        const notAdded = await local.createWorkspace(plan.baseSha);
        if (interrupted()) return EXIT.failed;
        if (notAdded) {
          io.err(redact(notAdded));
          return EXIT.failed;
        }
        const checked = await preflightWorkspace(plan, local.workspace);
        if (!checked.ok) {
          io.err(redact(checked.problem));
          return EXIT.badInput;
        }
        // --budget overrides the base commit's budgets (the Action's budget inputs).
        const budgeted = applyBudgets(checked.config, opts.budgets);
        if (!budgeted.ok) {
          io.err(redact(budgeted.problem));
          return EXIT.badInput;
        }
        const ws = { ...checked, config: budgeted.config };
        const branch = await local.chooseBranch(branchSlug(plan.request.prompt));
        const publish = await publishTarget(plan, local, deps);
        for (const l of startLines({
          prompt: plan.request.prompt,
          repo: plan.repo,
          baseRef: plan.baseRef,
          baseSha: plan.baseSha,
          failure: ws.gates.text,
          url: plan.request.url,
          existingTestPath: plan.request.existingTestPath,
          model: plan.model,
          sandbox: describeBackend(sandbox.kind),
          branch,
          publish,
          dryRun: plan.dryRun,
          outDir: plan.outDir,
        }))
          say(l);

        // 3. The executor every command of the job runs through: agent tools, gates, harness git.
        executor = await sandbox.factory({
          workspace: local.workspace,
          env: {},
          cards: [],
          jobId: "local",
          readOnlyPaths: local.objectStores(),
        });

        // 4. The pipeline, with progress on the terminal and Ctrl-C to stop it.
        const progress = new ProgressPrinter(io.out, clock.elapsed, ws.gates);
        printer = progress;
        if (interrupted()) return EXIT.failed;
        const out: PipelineOutput = await runPipeline({
          runId: `local-${clock.startedAt.toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
          origin: `local run (autofix run) in ${plan.repo}`,
          request: plan.request,
          executor,
          // Every gate check runs a fresh checkout in a sandbox of its own.
          gateExecutor: (dir) =>
            sandbox.factory({
              workspace: dir,
              env: {},
              cards: [],
              jobId: "local-gate",
              readOnlyPaths: local.objectStores(),
            }),
          config: ws.config,
          baseSha: plan.baseSha,
          branch: branch.name,
          reportDir: plan.outDir,
          publish,
          // github.com's web pages, or GHE's (the API base without /api/v3).
          ...(plan.target
            ? {
                webBase:
                  plan.target.apiBase === "https://api.github.com"
                    ? "https://github.com"
                    : plan.target.apiBase.replace(/\/api\/v3$/, ""),
              }
            : {}),
          dryRun: plan.dryRun,
          ...(plan.token ? { logsToken: plan.token } : {}),
          client: deps.client(),
          model: plan.model,
          signal: ctrl.signal,
          onProgress: (e) => progress.apply(e),
          onPublish: () => progress.line(`publish: pushing ${branch.name} and opening the draft PR`),
          // A model outage is waited out as on a worker (AUTOFIX_MODEL_OUTAGE_MINUTES).
          modelOutage: { budgetMs: settings.AUTOFIX_MODEL_OUTAGE_MINUTES * 60_000 },
          environment: {
            mode: LOCAL_RUN_MODE,
            repository: plan.repo,
            base: `${plan.baseRef} (${plan.baseSha})`,
          },
          now: deps.now,
        });
        // The proven commits come back to the person's repository (the job's is temporary).
        if (out.result) {
          await executor.killAll();
          await local.keepResults({
            baseSha: plan.baseSha,
            branch: branch.name,
            fixSha: out.result.git.fixCommitSha,
            reproSha: out.result.git.reproCommitSha,
          });
        }

        // 5. The summary and the exit code.
        for (const l of summaryLines(
          out,
          branch.name,
          plan.dryRun,
          plan.repo === io.cwd ? undefined : plan.repo,
        ))
          say(l);
        return runExitCode(out);
      } catch (err) {
        io.err(redact(`autofix run failed: ${(err as Error).message}`));
        return EXIT.failed;
      } finally {
        // 6. Cleanup: the job's processes, then the temporary folder.
        try {
          await executor?.dispose();
        } finally {
          const problem = await local.cleanup();
          if (problem) io.err(redact(`warning: ${problem}`));
          stopListening();
        }
      }
    },
  };
}

export const runLocalCommand = createRunCommand();

/** Preflight refused: every problem at once, exit 2. */
function refuse(io: CliIO, problems: string[]): number {
  io.err(`cannot start (${problems.length} problem${problems.length > 1 ? "s" : ""}):`);
  for (const p of problems) io.err(redact(`  - ${p}`));
  io.err(`usage: ${USAGE}`);
  return EXIT.badInput;
}

/** Where a proven fix goes: null without a token (everything stays local). */
async function publishTarget(plan: RunPlan, local: LocalRepo, deps: RunDeps): Promise<PublishTarget | null> {
  const { token, target } = plan;
  if (!token || !target) return null;
  const helperPath = await local.credentialHelper();
  return {
    octokit: deps.octokit(token, target.apiBase),
    owner: target.owner,
    repo: target.repo,
    baseBranch: target.baseBranch,
    remoteUrl: target.remoteUrl,
    pushFrom: plan.repo,
    helperPath,
    token: async () => token,
    appEmails: [COMMIT_EMAIL],
  };
}

/** The first Ctrl-C stops the run (the report is still written); the second quits at once. */
function listenForInterrupts(
  deps: RunDeps,
  io: CliIO,
  line: (l: string) => void,
  ctrl: AbortController,
  workspace: string,
): () => void {
  let interrupts = 0;
  return deps.onInterrupt((signal) => {
    interrupts++;
    if (interrupts === 1) {
      line(
        `interrupted${signal === "SIGTERM" ? " (SIGTERM)" : ""}: stopping the run (Ctrl-C again to quit at once); the report is still written`,
      );
      ctrl.abort(new Error("interrupted"));
    } else {
      io.err(`quitting now; the temporary folder of ${workspace} may be left behind`);
      deps.forceExit(interruptExitCode(signal));
    }
  });
}

/** The exit code of a run quit by a second signal: 128 + its number (130 Ctrl-C, 143 SIGTERM). Pure. */
export function interruptExitCode(signal: string | undefined): number {
  return signal === "SIGTERM" ? 143 : signal === "SIGHUP" ? 129 : 130;
}
