import { ProbotOctokit } from "probot";
import { findStatusComment } from "../comment.js";
import { markerTarget } from "../render.js";
import { type CommentLocation, locationKey } from "./location.js";

/** The GitHub calls the drainer makes, one function per kind of write. */

type Req = { request: { signal: AbortSignal } };

function byApp(c: { performed_via_github_app?: unknown; user?: { type?: string } | null }): boolean {
  return c.performed_via_github_app != null || c.user?.type === "Bot";
}

/** The app's status comment at a location, found by its marker (newest first). */
export async function findStatusAt(
  octokit: ProbotOctokit,
  loc: CommentLocation,
  markerKey: string,
): Promise<number | null> {
  if (loc.kind === "issue") {
    return findStatusComment(octokit, { owner: loc.owner, repo: loc.repo, issue_number: loc.number });
  }
  const list = await octokit.paginate(octokit.rest.repos.listCommentsForCommit, {
    owner: loc.owner,
    repo: loc.repo,
    commit_sha: loc.sha,
    per_page: 100,
  });
  for (const c of [...list].reverse()) if (byApp(c) && markerTarget(c.body) === markerKey) return c.id;
  return null;
}

function status(err: unknown): number | undefined {
  const s = (err as { status?: unknown }).status;
  return typeof s === "number" ? s : undefined;
}

async function edit(octokit: ProbotOctokit, loc: CommentLocation, id: number, body: string, r: Req) {
  if (loc.kind === "issue")
    await octokit.rest.issues.updateComment({ owner: loc.owner, repo: loc.repo, comment_id: id, body, ...r });
  else
    await octokit.rest.repos.updateCommitComment({
      owner: loc.owner,
      repo: loc.repo,
      comment_id: id,
      body,
      ...r,
    });
}

async function create(octokit: ProbotOctokit, loc: CommentLocation, body: string, r: Req): Promise<number> {
  if (loc.kind === "issue") {
    const { data } = await octokit.rest.issues.createComment({
      owner: loc.owner,
      repo: loc.repo,
      issue_number: loc.number,
      body,
      ...r,
    });
    return data.id;
  }
  const { data } = await octokit.rest.repos.createCommitComment({
    owner: loc.owner,
    repo: loc.repo,
    commit_sha: loc.sha,
    body,
    ...r,
  });
  return data.id;
}

/**
 * Make the location's status comment say `body`: edit the recorded comment; when it is gone
 * (404: a person deleted it), the one found by its marker; else create it. `onCreated` runs
 * right after a create so the id is recorded before anything else can fail.
 */
export async function writeStatusComment(
  octokit: ProbotOctokit,
  loc: CommentLocation,
  body: string,
  knownId: number | null,
  signal: AbortSignal,
  hooks: { onGone?: (id: number) => Promise<void>; onFound?: (id: number) => Promise<void> } = {},
): Promise<{ id: number; created: boolean }> {
  const r: Req = { request: { signal } };
  if (knownId) {
    try {
      await edit(octokit, loc, knownId, body, r);
      return { id: knownId, created: false };
    } catch (err) {
      if (status(err) !== 404) throw err;
      await hooks.onGone?.(knownId);
    }
  }
  const found = await findStatusAt(octokit, loc, markerTarget(body) ?? locationKey(loc));
  if (found && found !== knownId) {
    await hooks.onFound?.(found);
    await edit(octokit, loc, found, body, r);
    return { id: found, created: false };
  }
  const id = await create(octokit, loc, body, r);
  await hooks.onFound?.(id);
  return { id, created: true };
}

/** A reply at the location; with `marker`, first looks whether an earlier attempt already posted it. */
export async function postReply(
  octokit: ProbotOctokit,
  loc: CommentLocation,
  body: string,
  marker: string | null,
  signal: AbortSignal,
): Promise<number> {
  if (marker) {
    const list =
      loc.kind === "issue"
        ? await octokit.paginate(octokit.rest.issues.listComments, {
            owner: loc.owner,
            repo: loc.repo,
            issue_number: loc.number,
            per_page: 100,
          })
        : await octokit.paginate(octokit.rest.repos.listCommentsForCommit, {
            owner: loc.owner,
            repo: loc.repo,
            commit_sha: loc.sha,
            per_page: 100,
          });
    const seen = list.find((c) => byApp(c) && (c.body ?? "").includes(marker));
    if (seen) return seen.id;
  }
  return create(octokit, loc, body, { request: { signal } });
}

/** What to do after a failed write. */
export type FailureDecision =
  | { kind: "retry"; reason: string }
  | { kind: "pause"; untilMs: number; reason: string }
  | { kind: "drop"; reason: string };

function header(err: unknown, name: string): string | undefined {
  const h = (err as { response?: { headers?: Record<string, unknown> } }).response?.headers;
  const v = h?.[name];
  return v === undefined || v === null ? undefined : String(v);
}

/** Default pause when GitHub says "slow down" without saying for how long. */
export const DEFAULT_PAUSE_MS = 60_000;

/**
 * Classify a failed GitHub write. Pure. Network errors, timeouts, 5xx, 401 (a token being
 * renewed), 408 and 409 are retried with backoff; 429 and 403 rate-limit answers pause the
 * installation (retry-after, x-ratelimit-reset, else a minute); any other 4xx can never
 * succeed (422 on a locked issue, 404 on a deleted issue, 403 without access) and is dropped.
 */
export function classifyFailure(err: unknown, now: number): FailureDecision {
  const s = status(err);
  const message = String((err as Error)?.message ?? err).slice(0, 200);
  if (s === undefined || s >= 500) return { kind: "retry", reason: s ? `GitHub answered ${s}` : message };
  const retryAfter = Number(header(err, "retry-after"));
  const remaining = header(err, "x-ratelimit-remaining");
  const reset = Number(header(err, "x-ratelimit-reset"));
  if (s === 429 || s === 403) {
    if (Number.isFinite(retryAfter) && retryAfter >= 0)
      return {
        kind: "pause",
        untilMs: now + Math.max(1, retryAfter) * 1000,
        reason: `${s} retry-after ${retryAfter}s`,
      };
    if (remaining === "0" && Number.isFinite(reset) && reset > 0)
      return {
        kind: "pause",
        untilMs: Math.max(now + 1000, reset * 1000),
        reason: `${s} rate limit exhausted`,
      };
    if (s === 429 || /rate limit|abuse/i.test(message))
      return { kind: "pause", untilMs: now + DEFAULT_PAUSE_MS, reason: `${s} secondary rate limit` };
  }
  if (s === 401 || s === 408 || s === 409) return { kind: "retry", reason: `GitHub answered ${s}` };
  return { kind: "drop", reason: `GitHub answered ${s}: ${message}` };
}

/** Backoff before the next attempt after `tries` failures: 1 s, 2 s, 4 s, ... capped. Pure. */
export function backoffMs(tries: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(tries - 1, 30)));
}

/** Something that hands out installation access (the worker's GitHubFactory, the web's app credentials). */
export type InstallationAccess = (
  installationId: number,
) => Promise<{ octokit: ProbotOctokit; token(): Promise<string> }>;

/**
 * Octokits for the drainer: same API base and token as `access`, with Octokit's own write
 * throttle and retries turned off (the throttle serializes every write of the process behind
 * one clock; the drainer paces per installation and retries itself).
 */
export function drainerOctokits(
  access: InstallationAccess,
): (installationId: number) => Promise<ProbotOctokit> {
  return async (installationId) => {
    const a = await access(installationId);
    const baseUrl = (a.octokit.request.endpoint.DEFAULTS as { baseUrl: string }).baseUrl;
    return new ProbotOctokit({
      baseUrl,
      throttle: { enabled: false },
      retry: { enabled: false },
      authStrategy: () => {
        const auth = async () => ({ type: "token", tokenType: "installation", token: await a.token() });
        auth.hook = async (
          request: ((o: unknown) => Promise<unknown>) & {
            endpoint: { merge: (r: unknown, p?: unknown) => { headers: Record<string, string> } };
          },
          route: unknown,
          parameters?: unknown,
        ) => {
          const endpoint = request.endpoint.merge(route, parameters);
          endpoint.headers.authorization = `token ${await a.token()}`;
          return request(endpoint);
        };
        return auth;
      },
    }) as ProbotOctokit;
  };
}
