import type { ProbotOctokit } from "probot";
import type { CommentLocation, Outbox, ReactionContent } from "../status/outbox/index.js";

/**
 * Replies and reactions. A webhook makes no GitHub write inside its request: `reply` and `react`
 * put the write in the durable outbox (src/status/outbox), which a drainer delivers at the rate
 * GitHub allows, so the delivery answers as soon as its job is enqueued. Every reply carries the
 * marker that keeps the app from ever reading its own comments as commands, and passes the
 * redactor (the outbox redacts what it stores).
 *
 * The delivery a write belongs to travels with the delivery's Octokit client (bound by the
 * `once()` wrapper in index.ts), so callers keep the `(octokit, ...)` shape. A reply's outbox id
 * is the delivery id and its place among the delivery's replies: a redelivered webhook that
 * takes the same path writes each reply once.
 */

export interface IssueTarget {
  owner: string;
  repo: string;
  number: number;
}

export const REPLY_MARKER = "<!-- autofix:reply -->";

/** The writes' side of one webhook delivery. */
export interface DeliveryScope {
  /** GitHub's delivery id (X-GitHub-Delivery). */
  delivery: string;
  installationId: number;
  outbox: Pick<Outbox, "reply" | "react">;
  /** Replies queued so far in this attempt (the next reply's id). */
  replies: number;
}

const scopes = new WeakMap<object, DeliveryScope>();

/** Bind a delivery's writes to its Octokit client (done once per delivery by `once()`). */
export function bindDelivery(octokit: object, scope: Omit<DeliveryScope, "replies">): DeliveryScope {
  const bound = { ...scope, replies: 0 };
  scopes.set(octokit, bound);
  return bound;
}

/** The delivery an Octokit client belongs to, if it is a webhook's. */
export function deliveryOf(octokit: object): DeliveryScope | undefined {
  return scopes.get(octokit);
}

function scopeOf(octokit: object, what: string): DeliveryScope {
  const scope = scopes.get(octokit);
  if (!scope)
    throw new Error(
      `${what} outside a webhook delivery: the trigger handlers write through the outbox, bound by once() in src/triggers/index.ts`,
    );
  return scope;
}

/** The outbox id of a reply: the delivery and the reply's place in it. Pure. */
export function replyId(delivery: string, n: number): string {
  return `webhook:${delivery}:reply:${n}`;
}

/**
 * A new comment on the issue or PR, through the outbox; once per delivery and place (or per
 * delivery and `purpose`, for a reply that is not part of the handler's ordinary path).
 */
export async function reply(
  octokit: ProbotOctokit,
  target: IssueTarget,
  text: string,
  opts: { purpose?: string } = {},
): Promise<void> {
  await replyAt(
    octokit,
    { kind: "issue", owner: target.owner, repo: target.repo, number: target.number },
    text,
    opts,
  );
}

/** `reply` at any comment location: an issue or PR, or a commit (push-triggered jobs). */
export async function replyAt(
  octokit: ProbotOctokit,
  loc: CommentLocation,
  text: string,
  opts: { purpose?: string } = {},
): Promise<void> {
  const scope = scopeOf(octokit, "reply()");
  const id = opts.purpose
    ? `webhook:${scope.delivery}:${opts.purpose}`
    : replyId(scope.delivery, ++scope.replies);
  await scope.outbox.reply(loc, scope.installationId, `${REPLY_MARKER}\n${text}`, { id });
}

/** A reaction on an issue comment, through the outbox (the lowest priority; a repeat is harmless). */
export async function react(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  commentId: number,
  content: ReactionContent & ("eyes" | "+1" | "-1" | "confused" | "rocket"),
): Promise<void> {
  const scope = scopeOf(octokit, "react()");
  await scope.outbox.react({ owner: repo.owner, repo: repo.repo }, scope.installationId, commentId, content);
}

/**
 * What a person reads when GitHub could not be read in time for their trigger: nothing was
 * queued, and what to do. Pure.
 */
export function unavailableText(login: string, err: Error, again: string): string {
  return [
    `@${login} Autofix could not read what it needs from GitHub just now (${err.message}), so nothing was queued.`,
    `The webhook delivery is marked failed so it can be redelivered; if nothing happens within a few minutes, ${again}.`,
  ].join(" ");
}

export function commentUrl(webUrl: string, t: IssueTarget, commentId: number): string {
  return `${webUrl}/${t.owner}/${t.repo}/issues/${t.number}#issuecomment-${commentId}`;
}

/** The issue or PR page (GitHub redirects /issues/N to /pull/N for a pull request). */
export function issueUrl(webUrl: string, t: IssueTarget): string {
  return `${webUrl}/${t.owner}/${t.repo}/issues/${t.number}`;
}

/** A comment at a location (`commentId`), or the location's page when the id is not known yet. Pure. */
export function locationUrl(webUrl: string, loc: CommentLocation, commentId: number | null): string {
  if (loc.kind === "issue") {
    const t = { owner: loc.owner, repo: loc.repo, number: loc.number };
    return commentId ? commentUrl(webUrl, t, commentId) : issueUrl(webUrl, t);
  }
  const page = `${webUrl}/${loc.owner}/${loc.repo}/commit/${loc.sha}`;
  return commentId ? `${page}#commitcomment-${commentId}` : page;
}
