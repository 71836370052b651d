import type { ProbotOctokit } from "probot";
import { analyzeExecutions, type Execution, renderAnalysisTable } from "../../logs/analysis.js";
import { redact } from "../../shared/redact.js";
import type { TriggerStore } from "../store.js";
import { isFailedConclusion, type RunRecord, type Streak } from "./streak.js";

export const TRACKING_LABEL = "autofix-ci";

export function trackingMarker(fingerprint: string): string {
  return `<!-- autofix:tracking ${fingerprint} -->`;
}

export interface TrackingInfo {
  workflowName: string;
  branch: string;
  streak: Streak;
  signature: string;
  errorClass: string;
  labels: string[];
  threshold: number;
  /** The workflow's recorded runs on the branch: the per-fingerprint table (as `autofix analyze` shows). */
  history?: RunRecord[];
}

/**
 * The recorded runs as executions for the failure analysis: each run's final attempt (the
 * recorded one), and for a job a retry cleared, its failed earlier attempt (fingerprint unknown:
 * it counts as an execution that failed some other way). No log is read here. Pure.
 */
export function historyExecutions(history: readonly RunRecord[]): Execution[] {
  const out: Execution[] = [];
  for (const run of history) {
    const at = { sort: run.runNumber, text: `run #${run.runNumber}` };
    for (const job of run.jobs) {
      if (job.infra || job.conclusion === "cancelled" || job.conclusion === "skipped") continue;
      const failed = isFailedConclusion(job.conclusion) && job.fingerprint;
      out.push({
        id: job.jobId,
        runId: run.runId,
        attempt: run.attempt,
        name: job.name,
        conclusion: job.conclusion,
        runnerName: null,
        labels: job.labels,
        at,
        failure: failed
          ? {
              fingerprint: job.fingerprint!,
              errorClass: job.errorClass ?? "unknown",
              family: null,
              signature: job.signature ?? "",
              example: null,
              tests: job.testId ? [job.testId] : [],
              excerpt: "",
            }
          : null,
      });
    }
    for (const name of run.retryCleared) {
      out.push({
        // Not an API job id: an execution of its own, below any real id.
        id: -(run.runId * 100 + out.length),
        runId: run.runId,
        attempt: Math.max(1, run.attempt - 1),
        name,
        conclusion: "failure",
        runnerName: null,
        labels: run.jobs.find((j) => j.name === name)?.labels ?? [],
        at,
        failure: null,
      });
    }
  }
  return out;
}

export function renderTrackingIssue(info: TrackingInfo): { title: string; body: string } {
  const { streak } = info;
  const runs = streak.runs
    .map((r) => `- [run #${r.runNumber}](${r.url}) at \`${r.headSha.slice(0, 10)}\``)
    .join("\n");
  const body = [
    trackingMarker(streak.fingerprint),
    `**${info.workflowName} / ${streak.jobName}** failed ${streak.count} consecutive runs on \`${info.branch}\` (threshold ${info.threshold}), counted by each run's final attempt.`,
    "",
    `- error class: \`${info.errorClass}\``,
    `- runner labels: ${info.labels.map((l) => `\`${l}\``).join(", ") || "none"}`,
    `- failure kind: ${streak.nondeterministic ? `non-deterministic (${streak.flakinessEvidence.join("; ")})` : "deterministic so far (no pass seen in recent history)"}`,
    "",
    "Signature (volatile parts normalized):",
    "```",
    info.signature || "(no error text in the job's annotations)",
    "```",
    "",
    "Failing runs:",
    runs,
    "",
    ...(info.history?.length
      ? [
          `Failure analysis across the ${info.history.length} recorded run${info.history.length === 1 ? "" : "s"} of this workflow on \`${info.branch}\` (\`autofix analyze <run URLs>\` reads the logs too: runner hosts, retries, test ids):`,
          "",
          renderAnalysisTable(analyzeExecutions(historyExecutions(info.history))),
          "",
        ]
      : []),
    "Autofix tracks this failure here and keeps its status in a comment below. Close this issue when it is resolved; it is reopened if the same failure streaks again.",
  ].join("\n");
  return {
    title: `Autofix: ${info.workflowName} / ${streak.jobName} fails repeatedly on ${info.branch}`,
    body: redact(body),
  };
}

/**
 * One tracking issue per failure fingerprint: remembered in Redis, found again by its marker,
 * created once under a lock, reopened when the failure comes back.
 */
export async function findOrCreateTrackingIssue(
  octokit: ProbotOctokit,
  store: TriggerStore,
  repo: { owner: string; repo: string },
  info: TrackingInfo,
): Promise<number> {
  const fp = info.streak.fingerprint;
  const known = await store.getTrackingIssue(fp);
  const rendered = renderTrackingIssue(info);
  const reuse = async (number: number, state: string | undefined) => {
    await octokit.rest.issues.update({
      ...repo,
      issue_number: number,
      body: rendered.body,
      ...(state === "closed" ? { state: "open" as const } : {}),
    });
    await store.setTrackingIssue(fp, number);
    return number;
  };
  if (known) {
    try {
      const { data } = await octokit.rest.issues.get({ ...repo, issue_number: known });
      return await reuse(known, data.state);
    } catch (err) {
      if ((err as { status?: number }).status !== 404 && (err as { status?: number }).status !== 410)
        throw err;
    }
  }
  const unlock = await store.lock(`tracking:${fp}`);
  if (!unlock) throw new Error(`another delivery is creating the tracking issue for ${fp}; retry`);
  try {
    const marker = trackingMarker(fp);
    const issues = await octokit.paginate(octokit.rest.issues.listForRepo, {
      ...repo,
      labels: TRACKING_LABEL,
      state: "all",
      per_page: 100,
    });
    const found = issues.find((i) => !i.pull_request && i.body?.includes(marker));
    if (found) return await reuse(found.number, found.state);
    const { data } = await octokit.rest.issues.create({
      ...repo,
      title: rendered.title,
      body: rendered.body,
      labels: [TRACKING_LABEL],
    });
    await store.setTrackingIssue(fp, data.number);
    return data.number;
  } finally {
    await unlock();
  }
}
