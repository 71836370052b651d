import type { ProbotOctokit } from "probot";
import { FIX_JOB_VERSION, type FixJob } from "../contracts/fix-job.js";
import type { FixRequest } from "../contracts/fix-request.js";
import { stripHidden } from "../shared/sanitize.js";
import { findActionsUrl } from "./command.js";
import type { ReadCache } from "./read-cache.js";

/** The issue or pull request a comment or label points at, as the webhook describes it. */
export interface TriggerTarget {
  owner: string;
  repo: string;
  installationId: number;
  defaultBranch: string;
  number: number;
  isPullRequest: boolean;
  title: string;
  body: string;
  /** Known for pull_request events; looked up otherwise. */
  headSha?: string;
  headRef?: string;
}

/**
 * The exact commit to work on: a PR's head, or the default branch's tip for an issue. With a
 * cache (the web's: HEAD_CACHE_SECONDS), one branch lookup serves a burst of commands on one
 * repository's issues.
 */
export async function resolveHead(
  octokit: ProbotOctokit,
  t: TriggerTarget,
  heads?: ReadCache<{ sha: string; ref: string }>,
): Promise<{ sha: string; ref: string }> {
  if (t.headSha) return { sha: t.headSha, ref: t.headRef ?? t.defaultBranch };
  if (t.isPullRequest) {
    const { data } = await octokit.rest.pulls.get({ owner: t.owner, repo: t.repo, pull_number: t.number });
    return { sha: data.head.sha, ref: data.head.ref };
  }
  const tip = async () => {
    const { data } = await octokit.rest.repos.getBranch({
      owner: t.owner,
      repo: t.repo,
      branch: t.defaultBranch,
    });
    return { sha: data.commit.sha, ref: t.defaultBranch };
  };
  return heads ? heads.get(`${t.owner}/${t.repo}:${t.defaultBranch}`.toLowerCase(), tip) : tip();
}

/** One job per issue/PR while it is queued or running. */
export function targetFingerprint(t: { owner: string; repo: string; number: number }): string {
  return `target:${t.owner}/${t.repo}#${t.number}`.toLowerCase();
}

export type RequestOrError = { ok: true; request: FixRequest } | { ok: false; error: string };

/**
 * Build the request from what the person wrote: the command's prompt (or the title), the
 * issue text as context (hidden content stripped), and a log source: an explicit URL, an
 * Actions URL found in the text, or the text itself as pasted logs.
 */
export function buildRequest(
  t: TriggerTarget,
  opts: {
    prompt?: string;
    deterministic?: boolean;
    url?: string;
    existingTestPath?: string;
    allowTestChanges?: boolean;
  },
): RequestOrError {
  const title = stripHidden(t.title).trim();
  const body = stripHidden(t.body ?? "").trim();
  const ask = opts.prompt?.trim() || title;
  const kind = t.isPullRequest ? "Pull request" : "Issue";
  const prompt = [ask, "", `${kind} #${t.number}: ${title}`, body ? `\n${body}` : ""].join("\n").trim();
  const url = opts.url ?? findActionsUrl(body);
  if (!url && !body) {
    return {
      ok: false,
      error:
        "there are no failing logs to work from: add `--logs <Actions run or job URL>`, or paste the error output into the issue description",
    };
  }
  return {
    ok: true,
    request: {
      deterministic: opts.deterministic ?? true,
      prompt,
      ...(url ? { url } : { rawLogs: body }),
      ...(opts.existingTestPath ? { existingTestPath: opts.existingTestPath } : {}),
      ...(opts.allowTestChanges ? { allowTestChanges: true } : {}),
    },
  };
}

export function buildJob(
  t: TriggerTarget,
  head: { sha: string; ref: string },
  fields: { source: "comment" | "label"; request: FixRequest; pool: string; requestedBy: string; now: Date },
): FixJob {
  return {
    version: FIX_JOB_VERSION,
    source: fields.source,
    repository: {
      owner: t.owner,
      name: t.repo,
      installationId: t.installationId,
      defaultBranch: t.defaultBranch,
    },
    target: {
      kind: t.isPullRequest ? "pull_request" : "issue",
      number: t.number,
      headSha: head.sha,
      headRef: head.ref,
    },
    request: fields.request,
    pool: fields.pool,
    fingerprint: targetFingerprint(t),
    requestedBy: fields.requestedBy,
    createdAt: fields.now.toISOString(),
  };
}
