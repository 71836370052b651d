import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type Anthropic from "@anthropic-ai/sdk";
import type { ProbotOctokit } from "probot";
import { git } from "../agent/git.js";
import { type AgentResult, type ProgressListener, runFixAgent } from "../agent/index.js";
import type { ModelOutageOptions } from "../agent/loop.js";
import { DEFAULT_REPO_CONFIG, type RepoConfig } from "../config/repo-config.js";
import { readRunConfig } from "../config/run-config.js";
import type { FixJob } from "../contracts/fix-job.js";
import type { FixRequest } from "../contracts/fix-request.js";
import type { Outcome } from "../contracts/outcome.js";
import { importCommits } from "../git/import.js";
import type { FetchLike } from "../logs/index.js";
import { codeOwners, committedFiles, recentAuthors } from "../publish/developers.js";
import { codeSpan } from "../publish/markdown-text.js";
import { peoplesWorkBeforePr } from "../publish/people.js";
import { prTitle, renderPrBody } from "../publish/pr-body.js";
import { upsertDraftPr } from "../publish/pull-request.js";
import { pushBranch } from "../publish/push.js";
import {
  type ReportInput,
  renderReport,
  reportDigest,
  reportFileName,
  reportStatus,
} from "../publish/report.js";
import { recommendWorkflows } from "../publish/workflows.js";
import type { JobExecutor } from "../sandbox/executor.js";
import { describeBackend } from "../sandbox/select.js";
import { gatherFailure } from "./intake.js";

/**
 * The whole fix pipeline after the workspace exists: logs -> agent -> push -> draft PR ->
 * report. The worker's job runner and the local `autofix run` both call it; they differ only
 * in where the workspace comes from and whether (and how) results are published.
 */

export interface PublishTarget {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
  baseBranch: string;
  remoteUrl: string;
  /**
   * A repository the service trusts (the worker's mirror, the person's own repository): the
   * fix commit is imported into it and pushed from there, so no git command with the token
   * ever reads the job's repository, whose config the model could have rewritten.
   */
  pushFrom: string;
  helperPath: string;
  token(): Promise<string>;
  /** Emails of the app's own commits: the only ones a push may replace. */
  appEmails: string[];
}

export interface PipelineInput {
  runId: string;
  origin: string;
  request: FixRequest;
  /** The job's executor; its workspace is the checkout at `baseSha`. */
  executor: JobExecutor;
  /** Makes the executor of a gate check's fresh checkout (RunFixAgentOptions.gateExecutor). */
  gateExecutor?: (dir: string) => Promise<JobExecutor>;
  /**
   * The run-time repository config (readRunConfig), read once by the caller. Absent: read here
   * from the workspace; an invalid file ends the run failed with the errors.
   */
  config?: RepoConfig;
  baseSha: string;
  branch: string;
  /** The job (worker) for the PR body's wording; absent for local runs. */
  job?: Pick<FixJob, "source" | "repository" | "target" | "requestedBy" | "ci">;
  /** Link back to where the request came from (status comment, tracking issue). */
  originUrl?: string;
  reportDir: string;
  /** GitHub's web base (github.com or GHE): links of the model's may point only into the repository there. */
  webBase?: string;
  /** Where to publish; null means keep everything local (no token, or a dry run). */
  publish: PublishTarget | null;
  /** Print what would be published instead of publishing. */
  dryRun?: boolean;
  /** Token for reading Actions logs (may differ from the publishing token locally). */
  logsToken?: string;
  logsFetch?: FetchLike;
  client: Anthropic;
  model: string;
  signal?: AbortSignal;
  /** Worker shutdown: the agent stops before its next phase (see RunFixAgentOptions.drain). */
  drain?: AbortSignal;
  onProgress?: ProgressListener;
  /** How a model outage is waited out (AUTOFIX_MODEL_OUTAGE_MINUTES; see the agent's loop). */
  modelOutage?: ModelOutageOptions;
  /** Called when the proven fix starts being pushed and published. */
  onPublish?: () => void;
  /** Extra lines for the report's environment section (pool, cards, host). */
  environment?: Record<string, string>;
  now?: () => Date;
}

export interface PipelineOutput {
  status: Outcome;
  result: AgentResult | null;
  reportPath: string;
  report: string;
  digest: string;
  pullRequest: { url: string; number: number; created: boolean } | null;
  pushed: { branch: string; sha: string } | null;
  problem?: string;
  /** Dry run: what would have been published. */
  planned: string[];
}

export async function runPipeline(input: PipelineInput): Promise<PipelineOutput> {
  const workspace = input.executor.workspace;
  // The repository's own GitHub pages: the only place a link in the model's prose may point.
  const linkBase = input.publish
    ? `${(input.webBase ?? "https://github.com").replace(/\/+$/, "")}/${input.publish.owner}/${input.publish.repo}`
    : undefined;
  const now = input.now ?? (() => new Date());
  const startedAt = now();
  const planned: string[] = [];
  let result: AgentResult | null = null;
  let logs: ReportInput["logs"] = [];
  let problem: string | undefined;
  let pullRequest: PipelineOutput["pullRequest"] = null;
  let pushed: PipelineOutput["pushed"] = null;
  let config = input.config ?? DEFAULT_REPO_CONFIG;

  try {
    if (!input.config) config = (await readRunConfig(workspace)).config;
    const intake = await gatherFailure(input.request, {
      ...(input.logsToken ? { token: input.logsToken } : {}),
      ...(input.logsFetch ? { fetch: input.logsFetch } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    logs = intake.logs;
    result = await runFixAgent({
      executor: input.executor,
      ...(input.gateExecutor ? { gateExecutor: input.gateExecutor } : {}),
      baseSha: input.baseSha,
      branch: input.branch,
      request: input.request,
      config,
      failureContext: intake.context,
      client: input.client,
      model: input.model,
      ...(input.signal ? { signal: input.signal } : {}),
      ...(input.drain ? { drain: input.drain } : {}),
      ...(input.onProgress ? { onProgress: input.onProgress } : {}),
      ...(input.modelOutage ? { modelOutage: input.modelOutage } : {}),
    });
  } catch (err) {
    problem = (err as Error).message;
  }

  const changed = result?.git.changedFiles ?? [];
  const fixSha = result?.git.fixCommitSha ?? null;
  const [owners, authors, fixDiff] = await Promise.all([
    codeOwners(input.executor, input.baseSha, changed),
    recentAuthors(input.executor, changed, input.baseSha).catch(() => []),
    // The change a reviewer reads in the report: source files only, no textconv or external diff.
    fixSha && changed.length > 0
      ? git(
          input.executor,
          ["diff", "--no-color", "--no-ext-diff", "--no-textconv", input.baseSha, fixSha, "--", ...changed],
          { allowFailure: true },
        ).then(
          (r) => (r.exitCode === 0 ? r.stdout : ""),
          () => "",
        )
      : Promise.resolve(""),
  ]);
  const workflows = recommendWorkflows(changed, config.recommended_workflows, input.job?.ci?.workflowName);

  if (result?.status === "succeeded" && result.git.fixCommitSha) {
    // The test as committed (the repro commit, or the base for an existing test): what was
    // gated, not what lies on disk, and never a link's target.
    const testFiles = result.reproduction
      ? await committedFiles(
          input.executor,
          result.git.reproCommitSha ?? input.baseSha,
          result.reproduction.path,
        )
      : [];
    const title = prTitle(result);
    const body = renderPrBody({
      ...(input.job ? { job: input.job } : {}),
      result,
      workflows,
      owners,
      authors,
      testFiles,
      ...(input.originUrl ? { origin: input.originUrl } : {}),
      ...(input.webBase ? { webBase: input.webBase } : {}),
      ...(linkBase ? { allowedLinkBase: linkBase } : {}),
    });
    if (input.dryRun || !input.publish) {
      planned.push(
        input.publish
          ? `would push ${result.git.fixCommitSha} to ${input.branch} on ${input.publish.remoteUrl}`
          : `fix committed locally on branch ${input.branch} (${result.git.fixCommitSha}); not pushed (no GitHub token)`,
        input.publish
          ? `would open a draft PR against ${input.publish.baseBranch}: "${title}"`
          : `draft PR title would be: "${title}"`,
      );
    } else {
      const p = input.publish;
      input.onPublish?.();
      // Phase 3 has its own budget (budgets.pr_minutes): a hung push or API call ends it.
      const budgetMs = config.budgets.pr_minutes * 60_000;
      const budget = AbortSignal.timeout(budgetMs);
      const signal = input.signal ? AbortSignal.any([input.signal, budget]) : budget;
      try {
        // The push reads the job's repository: nothing the model started runs while it does.
        await input.executor.killAll();
        await importCommits({
          into: p.pushFrom,
          fromObjects: join(workspace, ".git", "objects"),
          tips: [result.git.fixCommitSha],
          have: [input.baseSha],
          signal,
        });
        const push = await pushBranch({
          workspace: p.pushFrom,
          commit: result.git.fixCommitSha,
          remoteUrl: p.remoteUrl,
          branch: input.branch,
          token: await p.token(),
          helperPath: p.helperPath,
          appEmails: p.appEmails,
          signal,
        });
        signal.throwIfAborted();
        pushed = { branch: push.branch, sha: push.sha };
        // An automatic job does not race people (issue 19): open work on the same failure holds its PR back.
        const held =
          input.job?.source === "ci" && "number" in input.job.target
            ? await peoplesWorkBeforePr(p.octokit, {
                owner: p.owner,
                repo: p.repo,
                trackingIssue: input.job.target.number,
                testIds: logs.flatMap((l) => l.failingTests),
                signal,
              })
            : null;
        if (held) throw new Error(held);
        pullRequest = await upsertDraftPr(p.octokit, {
          owner: p.owner,
          repo: p.repo,
          head: input.branch,
          base: p.baseBranch,
          title,
          body,
          signal,
        });
      } catch (err) {
        const why =
          budget.aborted && !input.signal?.aborted
            ? `publishing ran past its ${config.budgets.pr_minutes} min budget (budgets.pr_minutes)`
            : (err as Error).message;
        problem = `the fix was proven but could not be published: ${why}`;
      }
    }
  }

  const finishedAt = now();
  const reportInput: ReportInput = {
    ...(fixDiff ? { fixDiff } : {}),
    ...(linkBase ? { allowedLinkBase: linkBase } : {}),
    runId: input.runId,
    origin: input.origin,
    request: input.request,
    logs,
    result,
    pullRequest,
    pushed,
    ...(problem ? { problem } : {}),
    workflows,
    owners,
    authors,
    startedAt,
    finishedAt,
    environment: {
      ...(input.environment ?? {}),
      sandbox: describeBackend(input.executor.kind),
      // Which image the commands ran in and where it came from (the CI job's, autofix.yml, the worker's).
      // Repository text (job names, images, the CI command): code spans, never markdown.
      ...Object.fromEntries(Object.entries(input.executor.details ?? {}).map(([k, v]) => [k, codeSpan(v)])),
      ...(input.request.ciCommand
        ? {
            "CI command": `${codeSpan(firstLine(input.request.ciCommand.run))} (${codeSpan(input.request.ciCommand.source)})`,
          }
        : {}),
      node: process.version,
    },
  };
  const report = renderReport(reportInput);
  await mkdir(input.reportDir, { recursive: true });
  const reportPath = join(input.reportDir, reportFileName(startedAt, input.request.prompt));
  await writeFile(reportPath, report);
  return {
    status: reportStatus(reportInput),
    result,
    reportPath,
    report,
    digest: reportDigest(reportInput),
    pullRequest,
    pushed,
    ...(problem ? { problem } : {}),
    planned,
  };
}

/** The first line of a multi-line command, and how many more there are. Pure. */
function firstLine(command: string): string {
  const lines = command.trim().split("\n");
  return `${lines[0]!.slice(0, 200)}${lines.length > 1 ? ` … (+${lines.length - 1} lines)` : ""}`;
}
