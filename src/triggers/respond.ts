import type { ProbotOctokit } from "probot";
import { redact } from "../shared/redact.js";

/** Replies and reactions: every text passes the redactor and carries the marker that keeps
 * the app from ever reading its own comments as commands. */

export interface IssueTarget {
  owner: string;
  repo: string;
  number: number;
}

export const REPLY_MARKER = "<!-- autofix:reply -->";

export async function reply(octokit: ProbotOctokit, target: IssueTarget, text: string): Promise<void> {
  await octokit.rest.issues.createComment({
    owner: target.owner,
    repo: target.repo,
    issue_number: target.number,
    body: `${REPLY_MARKER}\n${redact(text)}`,
  });
}

export async function react(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  commentId: number,
  content: "eyes" | "+1" | "-1" | "confused" | "rocket",
): Promise<void> {
  await octokit.rest.reactions.createForIssueComment({ ...repo, comment_id: commentId, content });
}

export function commentUrl(webUrl: string, t: IssueTarget, commentId: number): string {
  return `${webUrl}/${t.owner}/${t.repo}/issues/${t.number}#issuecomment-${commentId}`;
}
