import type { ProbotOctokit } from "probot";
import { markerTarget } from "./render.js";

export interface IssueRef {
  owner: string;
  repo: string;
  issue_number: number;
}

/** owner/repo#N as used in markers and job descriptions. */
export function targetKey(ref: IssueRef): string {
  return `${ref.owner}/${ref.repo}#${ref.issue_number}`;
}

/** Find the status comment for a target by its hidden marker, written by an app (not a person quoting it). */
export async function findStatusComment(octokit: ProbotOctokit, ref: IssueRef): Promise<number | null> {
  const key = targetKey(ref);
  const comments = await octokit.paginate(octokit.rest.issues.listComments, { ...ref, per_page: 100 });
  // Newest first: if a person ever copied the marker, the app's own latest comment still wins.
  for (const c of [...comments].reverse()) {
    const byApp = c.performed_via_github_app != null || c.user?.type === "Bot";
    if (byApp && markerTarget(c.body) === key) return c.id;
  }
  return null;
}

/**
 * Create or update the target's one status comment. `knownId` (from the job data) is tried
 * first; if that comment was deleted, the marker search and then a new comment take over.
 * Returns the comment id to remember.
 */
export async function upsertStatusComment(
  octokit: ProbotOctokit,
  ref: IssueRef,
  body: string,
  knownId?: number | null,
): Promise<number> {
  const { owner, repo } = ref;
  if (knownId) {
    try {
      await octokit.rest.issues.updateComment({ owner, repo, comment_id: knownId, body });
      return knownId;
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }
  const found = await findStatusComment(octokit, ref);
  if (found) {
    await octokit.rest.issues.updateComment({ owner, repo, comment_id: found, body });
    return found;
  }
  const created = await octokit.rest.issues.createComment({ ...ref, body });
  return created.data.id;
}
