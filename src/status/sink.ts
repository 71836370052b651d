import type { FixJob } from "../contracts/fix-job.js";
import type { IssueRef } from "./comment.js";
import type { StatusView } from "./model.js";

/**
 * The one way a job's state reaches its status comment: queued (web), running with progress,
 * every final state, cancelled while waiting, invalid and stalled jobs, back to the queue.
 *
 * Callers hand over whole views; the sink owns everything after that: rendering, which
 * comment it is (ids, find-or-create) and the GitHub calls. So the GitHub implementation
 * (src/status/github.ts) can later be swapped for a durable outbox with one writer per comment
 * without touching a caller.
 */
export interface StatusSink {
  /**
   * Make `view` what the target's status comment shows. Resolves once the view is accepted
   * (for the GitHub sink: written); rejects when it was not. Views of one target should be
   * written one after the other (StatusReporter does that for a job).
   */
  write(view: StatusView): Promise<void>;
}

/**
 * Where a status comment lives: the issue or pull request, and the installation allowed to
 * write there. Everything here survives in the job data, also of a job that failed validation.
 */
export interface StatusTarget {
  owner: string;
  repo: string;
  number: number;
  installationId: number;
  /** A comment id carried with the job from an earlier write: a hint the sink may use or ignore. */
  commentId?: number;
  /**
   * The commit the status lives on (push-triggered jobs): when set, the status comment is a
   * commit comment on `sha` instead of a comment on issue `number` (see locationOf in
   * src/status/outbox/location.ts). Only the outbox sink writes commit comments.
   */
  sha?: string;
}

/** Makes the sink for one target. Workers get theirs injected (tests swap it). */
export type StatusSinkFactory = (target: StatusTarget) => StatusSink;

/** The status target of a (valid) job. Pure. */
export function statusTargetOf(job: Pick<FixJob, "repository" | "target" | "statusCommentId">): StatusTarget {
  return {
    owner: job.repository.owner,
    repo: job.repository.name,
    // A commit target (push trigger) has no issue: the status is a commit comment on its sha.
    ...(job.target.kind === "commit"
      ? { number: 0, sha: job.target.headSha }
      : { number: job.target.number }),
    installationId: job.repository.installationId,
    ...(job.statusCommentId ? { commentId: job.statusCommentId } : {}),
  };
}

/** The GitHub issue address of a target. Pure. */
export function issueRefOf(target: Pick<StatusTarget, "owner" | "repo" | "number">): IssueRef {
  return { owner: target.owner, repo: target.repo, issue_number: target.number };
}
