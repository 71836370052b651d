import type { ProbotOctokit } from "probot";
import { type FixJob, jobTargetKey } from "../contracts/fix-job.js";
import { initialView, type StatusTarget, statusTargetOf } from "../status/index.js";
import { locationOf, OutboxStatusSink } from "../status/outbox/index.js";
import type { TriggerDeps } from "./deps.js";
import { deliveryOf, locationUrl, replyAt } from "./respond.js";

export type AcceptDeps = Pick<TriggerDeps, "queues" | "store" | "log" | "now" | "settings" | "outbox">;

export type AcceptResult =
  | { status: "enqueued"; jobId: string; position: number }
  | { status: "duplicate"; jobId: string; pool: string; statusCommentUrl: string };

/**
 * The web process's status sink for a target (the queued and cancelled-while-waiting views):
 * the outbox, so the view is durable when write() resolves and the drainer (one writer per
 * comment, shared with the workers) creates or edits the comment outside the request.
 */
export function webStatusSink(deps: Pick<TriggerDeps, "outbox">, target: StatusTarget): OutboxStatusSink {
  return new OutboxStatusSink(deps.outbox, target);
}

/** How long the web remembers which job a delivery enqueued (GitHub redelivers within days). */
const DELIVERY_JOB_TTL_SECONDS = 3 * 24 * 3600;

function deliveryJobKey(deps: AcceptDeps, delivery: string): string {
  return `${deps.settings.AUTOFIX_QUEUE_PREFIX}:web:delivery-job:${delivery}`;
}

/**
 * Enqueue a job unless one with the same fingerprint is queued or running, then put the
 * target's "queued" status into the outbox. Makes no GitHub call: both are Redis writes, so the
 * webhook answers right after them. A duplicate trigger gets a reply (through the outbox) with
 * a link to the existing job's status instead of a second job.
 *
 * A redelivery of the delivery that enqueued the job (its first attempt failed after the
 * enqueue, say on the status write) is not a duplicate: it finishes that attempt's work.
 */
export async function acceptJob(
  octokit: ProbotOctokit,
  deps: AcceptDeps,
  job: FixJob,
): Promise<AcceptResult> {
  const delivery = deliveryOf(octokit)?.delivery;
  const redis = deps.queues.connection;
  const existing = await deps.queues.findActive(job.fingerprint);
  const ownJob =
    existing && delivery ? (await redis.get(deliveryJobKey(deps, delivery))) === existing.jobId : false;
  const enqueued = existing ? null : await deps.queues.enqueue(job);
  // Which job this delivery queued (for its redelivery); written with the rest below.
  const remembered =
    enqueued && !enqueued.deduplicated && delivery
      ? redis.set(deliveryJobKey(deps, delivery), enqueued.jobId, "EX", DELIVERY_JOB_TTL_SECONDS)
      : null;

  const statusTarget = statusTargetOf(job);
  const loc = locationOf(statusTarget);
  if ((existing && !ownJob) || enqueued?.deduplicated) {
    const jobId = existing?.jobId ?? enqueued!.jobId;
    const pool = existing?.pool ?? job.pool;
    // The drainer records the comment's id once it exists; until then the issue itself is the link.
    const url = locationUrl(deps.settings.githubWebUrl, loc, await deps.outbox.commentIdOf(loc));
    if (job.source !== "ci") {
      await replyAt(
        octokit,
        loc,
        `A job for this is already ${existing ? "queued or running" : "queued"} (job \`${jobId}\` on pool \`${pool}\`): see [its status](${url}).${
          // A commit comment is no place for commands (GitHub sends no event for it).
          job.source === "push" ? "" : " Comment `/autofix cancel` first to start over."
        }`,
      );
    }
    deps.log.info({ jobId, fingerprint: job.fingerprint }, "duplicate trigger: existing job kept");
    return { status: "duplicate", jobId, pool, statusCommentUrl: url };
  }

  const jobId = existing?.jobId ?? enqueued!.jobId;
  const pool = existing?.pool ?? job.pool;
  // Side by side (each one Redis round trip); all of them are in Redis before the answer.
  let position = 0;
  await Promise.all([
    remembered,
    deps.store.saveLastJob(jobTargetKey(job), job),
    deps.queues.position(pool, jobId).then(async (p) => {
      position = p;
      await webStatusSink(deps, statusTarget).write({
        ...initialView({ ...job, pool }, jobId, deps.now()),
        queuePosition: p,
      });
    }),
  ]);
  deps.log.info(
    {
      jobId,
      pool,
      fingerprint: job.fingerprint,
      source: job.source,
      ...(ownJob ? { redelivered: true } : {}),
    },
    ownJob ? "job enqueued (redelivery: the first attempt had enqueued it)" : "job enqueued",
  );
  return { status: "enqueued", jobId, position };
}
