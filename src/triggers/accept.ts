import type { ProbotOctokit } from "probot";
import type { FixJob } from "../contracts/fix-job.js";
import {
  findStatusComment,
  GitHubStatusSink,
  initialView,
  type StatusTarget,
  statusTargetOf,
} from "../status/index.js";
import type { TriggerDeps } from "./deps.js";
import { commentUrl, type IssueTarget, reply } from "./respond.js";

export type AcceptDeps = Pick<TriggerDeps, "queues" | "store" | "log" | "now" | "settings">;

export type AcceptResult =
  | { status: "enqueued"; jobId: string; statusCommentId: number; position: number }
  | { status: "duplicate"; jobId: string; pool: string; statusCommentUrl: string | null };

/**
 * The web process's status sink for a target (the queued and cancelled-while-waiting views):
 * the one place a later implementation of the port replaces.
 */
export function webStatusSink(octokit: ProbotOctokit, target: StatusTarget): GitHubStatusSink {
  return new GitHubStatusSink(() => octokit, target);
}

/**
 * Enqueue a job unless one with the same fingerprint is queued or running, then post or
 * refresh the target's one status comment. A duplicate trigger gets a reply with a link to
 * the existing job's status instead of a second job.
 */
export async function acceptJob(
  octokit: ProbotOctokit,
  deps: AcceptDeps,
  job: FixJob,
): Promise<AcceptResult> {
  const target: IssueTarget = {
    owner: job.repository.owner,
    repo: job.repository.name,
    number: job.target.number,
  };
  const ref = { owner: target.owner, repo: target.repo, issue_number: target.number };
  const existing = await deps.queues.findActive(job.fingerprint);
  const enqueued = existing ? null : await deps.queues.enqueue(job);

  if (existing || enqueued?.deduplicated) {
    const jobId = existing?.jobId ?? enqueued!.jobId;
    const pool = existing?.pool ?? job.pool;
    const statusId = await findStatusComment(octokit, ref);
    const url = statusId ? commentUrl(deps.settings.githubWebUrl, target, statusId) : null;
    if (job.source !== "ci") {
      await reply(
        octokit,
        target,
        `A job for this is already ${existing ? "queued or running" : "queued"} (job \`${jobId}\` on pool \`${pool}\`)${url ? `: see [its status](${url})` : ""}. Comment \`/autofix cancel\` first to start over.`,
      );
    }
    deps.log.info({ jobId, fingerprint: job.fingerprint }, "duplicate trigger: existing job kept");
    return { status: "duplicate", jobId, pool, statusCommentUrl: url };
  }

  const { jobId } = enqueued!;
  const [, position] = await Promise.all([
    deps.store.saveLastJob(`${target.owner}/${target.repo}#${target.number}`, job),
    deps.queues.position(job.pool, jobId),
  ]);
  const status = webStatusSink(octokit, statusTargetOf(job));
  await status.write({ ...initialView(job, jobId, deps.now()), queuePosition: position });
  // The GitHub sink's id, kept with the job: workers find the comment by its marker anyway,
  // the id just saves them a search.
  const statusCommentId = status.commentId!;
  const stored = await deps.queues.queue(job.pool).getJob(jobId);
  if (stored && stored.data.statusCommentId === undefined) {
    await stored.updateData({ ...stored.data, statusCommentId }).catch(() => {});
  }
  deps.log.info({ jobId, pool: job.pool, fingerprint: job.fingerprint, source: job.source }, "job enqueued");
  return { status: "enqueued", jobId, statusCommentId, position };
}
