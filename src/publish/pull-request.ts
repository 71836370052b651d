import type { ProbotOctokit } from "probot";
import { redact } from "../shared/redact.js";

export interface DraftPrInput {
  owner: string;
  repo: string;
  /** The fix branch (in the same repository). */
  head: string;
  base: string;
  title: string;
  body: string;
  /** Aborts the API calls (the publish budget, a cancel). */
  signal?: AbortSignal;
}

export interface DraftPrResult {
  number: number;
  url: string;
  created: boolean;
}

/** GitHub limits a PR body to 65536 characters; keep a margin and say what was cut. */
export const MAX_BODY = 60_000;

export function clampBody(body: string): string {
  if (body.length <= MAX_BODY) return body;
  return `${body.slice(0, MAX_BODY)}\n\n_(truncated: the full text is in the report)_`;
}

/**
 * Create the draft PR for a fix branch, or update the open one: a retried job edits its PR
 * instead of opening a second. Title and body pass the redactor.
 */
export async function upsertDraftPr(octokit: ProbotOctokit, input: DraftPrInput): Promise<DraftPrResult> {
  const { owner, repo } = input;
  const title = redact(input.title).slice(0, 250);
  const body = clampBody(redact(input.body));
  const request = input.signal ? { request: { signal: input.signal } } : {};
  const findOpen = async () => {
    const open = await octokit.rest.pulls.list({
      owner,
      repo,
      head: `${owner}:${input.head}`,
      state: "open",
      per_page: 10,
      ...request,
    });
    return open.data.find((p) => p.head.ref === input.head) ?? null;
  };
  const existing = await findOpen();
  if (existing) {
    await octokit.rest.pulls.update({ owner, repo, pull_number: existing.number, title, body, ...request });
    return { number: existing.number, url: existing.html_url, created: false };
  }
  try {
    const { data } = await octokit.rest.pulls.create({
      owner,
      repo,
      head: input.head,
      base: input.base,
      title,
      body,
      draft: true,
      ...request,
    });
    return { number: data.number, url: data.html_url, created: true };
  } catch (err) {
    // A 502 or a dropped connection may come after GitHub created the PR (and a retried
    // create then answers 422 "already exists"): before saying it failed, look it up by its
    // head branch. Only an abort (the publish budget, a cancel) skips the look-up.
    if (input.signal?.aborted) throw err;
    const made = await findOpen().catch(() => null);
    if (made) return { number: made.number, url: made.html_url, created: true };
    throw new Error(`creating the draft PR failed: ${prFailure(err)}`);
  }
}

/** An Octokit error as a short, redacted reason ("HTTP 502: Bad Gateway"). Pure. */
export function prFailure(err: unknown): string {
  const e = err as { status?: number; message?: string };
  const message = redact(String(e?.message ?? err))
    .split("\n")[0]!
    .slice(0, 300);
  return typeof e?.status === "number" && !message.includes(String(e.status))
    ? `HTTP ${e.status}: ${message}`
    : message;
}
