import { createHash } from "node:crypto";
import type { Context, ProbotOctokit } from "probot";
import { poolForRunnerLabels } from "../../config/pools.js";
import { effectivePoolRules, environmentFor, type RepoConfig } from "../../config/repo-config.js";
import { FIX_JOB_VERSION, type FixJob, type JobEnvironment } from "../../contracts/fix-job.js";
import type { FixRequest } from "../../contracts/fix-request.js";
import { triageText } from "../../logs/index.js";
import { acceptJob } from "../accept.js";
import type { DecisionRecord, TriggerDeps } from "../deps.js";
import { gateAutomaticJob, recordAutomaticStart, recordRunDecisions } from "../loop-breakers.js";
import { loadRepoConfig } from "../repo-config.js";
import {
  currentStreaks,
  isFailedConclusion,
  isInfraStep,
  type JobResult,
  mergeRecord,
  type RunRecord,
  runRecordSchema,
} from "./streak.js";
import { findOrCreateTrackingIssue } from "./tracking-issue.js";
import { readWorkflowJob } from "./workflow-env.js";

type RunContext = Context<"workflow_run.completed">;

/** Branches the app pushes to: never watched, so its own fix branches cannot trigger it. */
export const OWN_BRANCH_PREFIX = "autofix/";

export function ciFingerprint(
  repo: string,
  workflowPath: string,
  jobName: string,
  signature: string,
): string {
  const h = createHash("sha256")
    .update(`${repo}\n${workflowPath}\n${jobName}\n${signature}`)
    .digest("hex")
    .slice(0, 16);
  return `ci:${repo}:${h}`.toLowerCase();
}

interface ApiJob {
  id: number;
  name: string;
  conclusion: string | null;
  labels: string[];
  html_url: string | null;
  steps?: Array<{ name: string; conclusion: string | null }>;
}

async function describeFailedJob(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  fullName: string,
  workflowPath: string,
  job: ApiJob,
): Promise<JobResult> {
  const failedStep = job.steps?.find((s) => isFailedConclusion(s.conclusion))?.name ?? null;
  const annotations = await octokit.paginate(octokit.rest.checks.listAnnotations, {
    ...repo,
    check_run_id: job.id,
    per_page: 50,
  });
  const text = annotations
    .filter((a) => a.annotation_level === "failure" || a.annotation_level === "warning")
    .map((a) => `##[error]${a.title ? `${a.title}: ` : ""}${a.message ?? ""}`)
    .join("\n");
  const triage = triageText(text);
  const infra = triage.errorClass === "infra" || isInfraStep(failedStep);
  const signature = `${failedStep ?? "(no step)"} | ${triage.signature}`;
  return {
    name: job.name,
    jobId: job.id,
    conclusion: job.conclusion ?? "unknown",
    labels: job.labels,
    infra,
    fingerprint: ciFingerprint(fullName, workflowPath, job.name, signature),
    signature,
    errorClass: triage.errorClass,
    ...(job.html_url ? { url: job.html_url } : {}),
    ...((triage.failingTests[0] ?? triage.primary?.test)
      ? { testId: (triage.failingTests[0] ?? triage.primary?.test)! }
      : {}),
  };
}

/** The workflow file at the run's commit, or why it could not be read. */
async function workflowText(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  path: string,
  sha: string,
): Promise<{ text: string } | { problem: string }> {
  try {
    const res = await octokit.rest.repos.getContent({ ...repo, path, ref: sha });
    const data = res.data as { type?: string; content?: string; encoding?: string; size?: number };
    if (Array.isArray(res.data) || data.type !== "file" || typeof data.content !== "string")
      return { problem: `${path} at ${sha.slice(0, 12)} is not a file` };
    if ((data.size ?? 0) > 1024 * 1024) return { problem: `${path} is larger than 1 MB` };
    return {
      text: Buffer.from(data.content, (data.encoding as BufferEncoding) ?? "base64").toString("utf8"),
    };
  } catch (err) {
    return {
      problem: `${path} at ${sha.slice(0, 12)} could not be read (${(err as { status?: number }).status ?? "error"})`,
    };
  }
}

/**
 * The failed job's environment and command: its own `container:` when literal, else the
 * repository's autofix.yml `environment:`, else the worker's default; say where it came from.
 */
export function ciEnvironment(
  facts:
    | ReturnType<typeof readWorkflowJob>
    | { notes: string[]; jobId?: undefined; environment?: undefined; command?: undefined },
  where: { path: string; sha: string },
  config: RepoConfig,
  pool: string,
  labels: readonly string[],
): { environment: JobEnvironment; ciCommand?: NonNullable<FixRequest["ciCommand"]> } {
  const origin = `workflow ${where.path}@${where.sha} job ${facts.jobId ?? "?"}`;
  const fromConfig = environmentFor(config, pool, labels);
  const notes = [...facts.notes];
  let environment: JobEnvironment;
  if (facts.environment?.image) {
    const w = facts.environment;
    const workdir = w.workdir ?? fromConfig?.workdir;
    if (!w.workdir && fromConfig?.workdir) notes.push(`workdir ${fromConfig.workdir} from autofix.yml`);
    environment = {
      image: w.image,
      env: { ...(fromConfig?.env ?? {}), ...w.env },
      options: w.options,
      ...(workdir ? { workdir } : {}),
      source: origin,
      notes: notes.slice(0, 20),
    };
  } else if (fromConfig) {
    environment = { ...fromConfig, source: "autofix.yml", notes: notes.slice(0, 20) };
  } else {
    environment = { env: {}, options: [], source: "worker default", notes: notes.slice(0, 20) };
  }
  const c = facts.command;
  return {
    environment: { ...environment, notes: environment.notes.map((n) => n.slice(0, 500)) },
    ...(c
      ? {
          ciCommand: {
            source: `${origin} step "${c.step}"`.slice(0, 500),
            run: c.run.slice(0, 20_000),
            ...(c.timeoutMinutes ? { timeoutMinutes: c.timeoutMinutes } : {}),
            ...(c.workingDirectory ? { workingDirectory: c.workingDirectory.slice(0, 500) } : {}),
          },
        }
      : {}),
  };
}

/** Whether this run belongs to the repeated-failure detector at all. */
export function watchDecision(
  run: {
    head_branch: string | null;
    head_repository: { full_name: string } | null;
    event: string;
    conclusion: string | null;
  },
  repoFullName: string,
  defaultBranch: string,
  config: RepoConfig,
): string | null {
  if (!config.ci_trigger) return "ci_trigger is off";
  if (!run.conclusion) return "run has no conclusion";
  const branch = run.head_branch ?? "";
  if (branch.startsWith(OWN_BRANCH_PREFIX)) return "the app's own branch";
  if (run.head_repository && run.head_repository.full_name !== repoFullName) return "fork head";
  if (run.event === "pull_request" || run.event === "pull_request_target") return "pull request run";
  const watched = config.watched_branches.length > 0 ? config.watched_branches : [defaultBranch];
  if (!watched.includes(branch)) return `branch ${branch} is not watched`;
  return null;
}

export async function onWorkflowRun(context: RunContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const { workflow_run: run, repository, installation } = context.payload;
  if (!installation) return { decision: "ignored", detail: "no installation" };
  const loaded = await loadRepoConfig(context);
  if (!loaded.ok) {
    deps.log.warn(
      { repo: repository.full_name, errors: loaded.errors },
      "invalid repo config: repeated-failure trigger skipped",
    );
    return { decision: "bad-config" };
  }
  const config = loaded.config;
  const skip = watchDecision(run, repository.full_name, repository.default_branch, config);
  if (skip) return { decision: "ignored", detail: skip };

  const repo = { owner: repository.owner.login, repo: repository.name };
  const octokit = context.octokit;
  const jobs = (await octokit.paginate(octokit.rest.actions.listJobsForWorkflowRunAttempt, {
    ...repo,
    run_id: run.id,
    attempt_number: run.run_attempt ?? 1,
    per_page: 100,
  })) as ApiJob[];
  let retryCleared: string[] = [];
  if ((run.run_attempt ?? 1) > 1) {
    const previous = (await octokit.paginate(octokit.rest.actions.listJobsForWorkflowRunAttempt, {
      ...repo,
      run_id: run.id,
      attempt_number: (run.run_attempt ?? 1) - 1,
      per_page: 100,
    })) as ApiJob[];
    retryCleared = previous
      .filter(
        (p) =>
          isFailedConclusion(p.conclusion) &&
          jobs.some((j) => j.name === p.name && j.conclusion === "success"),
      )
      .map((p) => p.name);
  }

  const results: JobResult[] = [];
  for (const job of jobs) {
    if (isFailedConclusion(job.conclusion)) {
      results.push(await describeFailedJob(octokit, repo, repository.full_name, run.path, job));
    } else {
      results.push({
        name: job.name,
        jobId: job.id,
        conclusion: job.conclusion ?? "unknown",
        labels: job.labels,
        infra: false,
      });
    }
  }
  const record: RunRecord = {
    runId: run.id,
    runNumber: run.run_number,
    attempt: run.run_attempt ?? 1,
    headSha: run.head_sha,
    conclusion: run.conclusion ?? "unknown",
    jobs: results,
    retryCleared,
    url: run.html_url,
  };

  const scope = `${repository.full_name}:${run.head_branch}:${run.workflow_id}`.toLowerCase();
  const stored = await deps.store.loadRuns(scope);
  const previousRaw = stored.get(run.id);
  const previous = previousRaw ? runRecordSchema.safeParse(JSON.parse(previousRaw)) : null;
  const merged = mergeRecord(previous?.success ? previous.data : undefined, record);
  if (merged !== record)
    return { decision: "ignored", detail: `attempt ${record.attempt} is older than the recorded attempt` };
  await deps.store.recordRun(scope, run.id, JSON.stringify(record));

  const history: RunRecord[] = [];
  for (const [id, raw] of stored) {
    if (id === run.id) continue;
    const parsed = runRecordSchema.safeParse(JSON.parse(raw));
    if (parsed.success) history.push(parsed.data);
  }
  history.push(record);
  await recordRunDecisions(
    deps,
    repository.full_name,
    run.path.split("@")[0]!,
    record,
    currentStreaks(history, record),
    config.failure_threshold,
  );

  const streaks = currentStreaks(history, record).filter((s) => s.count >= config.failure_threshold);
  if (streaks.length === 0) {
    return { decision: "streak-recorded", detail: `run #${run.run_number} ${run.conclusion}` };
  }

  const decisions: DecisionRecord[] = [];
  let workflow: { text: string } | { problem: string } | undefined;
  for (const streak of streaks) {
    const failed = record.jobs.find((j) => j.name === streak.jobName)!;
    if ((await deps.store.streakHandled(streak.fingerprint)) === String(streak.startRunId)) {
      decisions.push({ decision: "duplicate", detail: `streak of ${streak.jobName} already has a job` });
      continue;
    }
    const pool = poolForRunnerLabels(failed.labels, effectivePoolRules(config), config.default_pool);
    const jobPool = deps.settings.pools.includes(pool) ? pool : config.default_pool;
    // What the failed job ran in and ran, from its workflow at the run's commit.
    const workflowPath = run.path.split("@")[0]!;
    const apiJob = jobs.find((j) => j.name === streak.jobName);
    const failedStep = apiJob?.steps?.find((s) => isFailedConclusion(s.conclusion))?.name ?? null;
    workflow ??= await workflowText(octokit, repo, workflowPath, run.head_sha);
    const facts =
      "text" in workflow
        ? readWorkflowJob(workflow.text, streak.jobName, failedStep)
        : { notes: [workflow.problem] };
    const { environment, ciCommand } = ciEnvironment(
      facts,
      { path: workflowPath, sha: run.head_sha },
      config,
      jobPool,
      failed.labels,
    );
    const issueNumber = await findOrCreateTrackingIssue(octokit, deps.store, repo, {
      workflowName: run.name ?? run.path,
      branch: run.head_branch ?? repository.default_branch,
      streak,
      signature: failed.signature ?? "",
      errorClass: failed.errorClass ?? "unknown",
      labels: failed.labels,
      threshold: config.failure_threshold,
      history,
    });
    const held = await gateAutomaticJob(octokit, deps, {
      repo,
      config,
      streak,
      failed,
      trackingIssue: issueNumber,
      workflowPath: run.path.split("@")[0]!,
    });
    if (held) {
      decisions.push(held);
      continue;
    }
    const job: FixJob = {
      version: FIX_JOB_VERSION,
      source: "ci",
      repository: {
        owner: repo.owner,
        name: repo.repo,
        installationId: installation.id,
        defaultBranch: repository.default_branch,
      },
      target: {
        kind: "issue",
        number: issueNumber,
        headSha: run.head_sha,
        headRef: run.head_branch ?? repository.default_branch,
      },
      request: {
        deterministic: !streak.nondeterministic,
        prompt: [
          `The CI job "${streak.jobName}" of workflow "${run.name}" failed ${streak.count} consecutive runs on ${run.head_branch}.`,
          `Error class: ${failed.errorClass}. Find the root cause in the code and fix it.`,
          streak.nondeterministic ? `It is intermittent: ${streak.flakinessEvidence.join("; ")}.` : "",
        ]
          .filter(Boolean)
          .join("\n"),
        url: failed.url ?? `${run.html_url}`,
        ...(ciCommand ? { ciCommand } : {}),
      },
      pool: jobPool,
      environment,
      fingerprint: streak.fingerprint,
      requestedBy: context.payload.sender.login,
      ci: {
        workflowName: run.name ?? run.path,
        jobName: streak.jobName,
        runId: run.id,
        jobId: failed.jobId,
        runnerLabels: failed.labels,
        errorSignature: failed.signature ?? "",
        streak: streak.count,
        workflowPath,
      },
      createdAt: deps.now().toISOString(),
    };
    const result = await acceptJob(octokit, deps, job);
    await deps.store.markStreakHandled(streak.fingerprint, streak.startRunId);
    await recordAutomaticStart(
      deps,
      {
        repoFullName: repository.full_name,
        workflowPath: run.path.split("@")[0]!,
        jobName: streak.jobName,
        fingerprint: streak.fingerprint,
        trackingIssue: issueNumber,
      },
      { ...result, pool: job.pool },
    );
    decisions.push(
      result.status === "enqueued"
        ? {
            decision: "enqueued",
            jobId: result.jobId,
            pool: job.pool,
            detail: `${streak.jobName} x${streak.count}`,
          }
        : { decision: "duplicate", jobId: result.jobId },
    );
  }
  return decisions.find((d) => d.decision === "enqueued") ?? decisions[0]!;
}
