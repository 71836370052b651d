import { type FixJob, jobTargetKey } from "../contracts/fix-job.js";
import { defaultSteps, type StatusView } from "./model.js";

/** Why the job exists, for the comment header. */
export function triggerText(job: FixJob): string {
  switch (job.source) {
    case "comment":
      return "`/autofix` comment";
    case "label":
      return "trigger label";
    case "push":
      return job.target.kind === "commit"
        ? `push of \`${job.target.infoPath ?? "info.json"}\` to \`${job.target.headRef}\``
        : "push of an info.json";
    case "ci":
      return job.ci
        ? `${job.ci.streak} consecutive failures of ${job.ci.workflowName} / ${job.ci.jobName}`
        : "repeated CI failures";
  }
}

/**
 * The status view of a job before any progress: the same header whether the web process
 * (queued) or a worker (running, final) writes it. CI jobs mention nobody: a robot should not
 * ping whoever happened to push the commit.
 */
export function baseView(job: FixJob, jobId: string | undefined, now: Date): StatusView {
  return {
    state: "queued",
    target: jobTargetKey(job),
    ...(jobId ? { jobId } : {}),
    pool: job.pool,
    ...(job.source === "ci" ? {} : { requestedBy: job.requestedBy }),
    trigger: triggerText(job),
    updatedAt: now,
  };
}

/** A job's view with its checklist, all steps still to come: where the web and each attempt start. */
export function initialView(job: FixJob, jobId: string | undefined, now: Date): StatusView {
  return { ...baseView(job, jobId, now), steps: defaultSteps(!!job.request.existingTestPath) };
}
