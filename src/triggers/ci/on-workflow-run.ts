import { createHash } from "node:crypto";
import type { Context, ProbotOctokit } from "probot";
import { poolForRunnerLabels } from "../../config/pools.js";
import { effectivePoolRules, type RepoConfig } from "../../config/repo-config.js";
import { FIX_JOB_VERSION, type FixJob } from "../../contracts/fix-job.js";
import { triageText } from "../../logs/index.js";
import { acceptJob } from "../accept.js";
import type { DecisionRecord, TriggerDeps } from "../deps.js";
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

  const streaks = currentStreaks(history, record).filter((s) => s.count >= config.failure_threshold);
  if (streaks.length === 0) {
    return { decision: "streak-recorded", detail: `run #${run.run_number} ${run.conclusion}` };
  }

  const decisions: DecisionRecord[] = [];
  for (const streak of streaks) {
    const failed = record.jobs.find((j) => j.name === streak.jobName)!;
    if ((await deps.store.streakHandled(streak.fingerprint)) === String(streak.startRunId)) {
      decisions.push({ decision: "duplicate", detail: `streak of ${streak.jobName} already has a job` });
      continue;
    }
    const pool = poolForRunnerLabels(failed.labels, effectivePoolRules(config), config.default_pool);
    const issueNumber = await findOrCreateTrackingIssue(octokit, deps.store, repo, {
      workflowName: run.name ?? run.path,
      branch: run.head_branch ?? repository.default_branch,
      streak,
      signature: failed.signature ?? "",
      errorClass: failed.errorClass ?? "unknown",
      labels: failed.labels,
      threshold: config.failure_threshold,
    });
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
      },
      pool: deps.settings.pools.includes(pool) ? pool : config.default_pool,
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
      },
      createdAt: deps.now().toISOString(),
    };
    const result = await acceptJob(octokit, deps, job);
    await deps.store.markStreakHandled(streak.fingerprint, streak.startRunId);
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
