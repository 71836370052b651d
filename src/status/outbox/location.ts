import type { StatusTarget } from "../sink.js";

/**
 * Where a comment lives: an issue or pull request (the issue-comment API), or a commit (the
 * commit-comment API: `repos.createCommitComment`, `repos.updateCommitComment`,
 * `repos.listCommentsForCommit`). Push-triggered jobs keep their status on the commit.
 */
export type CommentLocation =
  | { kind: "issue"; owner: string; repo: string; number: number }
  | { kind: "commit"; owner: string; repo: string; sha: string };

/**
 * The location's key: `owner/repo#N` for an issue (the same text as the status marker's
 * target), `owner/repo@sha` for a commit. One status comment per key. Pure.
 */
export function locationKey(loc: CommentLocation): string {
  return loc.kind === "issue"
    ? `${loc.owner}/${loc.repo}#${loc.number}`
    : `${loc.owner}/${loc.repo}@${loc.sha}`;
}

/** The location of a status target: its commit when it names one, else its issue or PR. Pure. */
export function locationOf(target: Pick<StatusTarget, "owner" | "repo" | "number" | "sha">): CommentLocation {
  return target.sha
    ? { kind: "commit", owner: target.owner, repo: target.repo, sha: target.sha }
    : { kind: "issue", owner: target.owner, repo: target.repo, number: target.number };
}

const SHA_RE = /^[0-9a-f]{7,64}$/i;
const NAME_RE = /^[A-Za-z0-9_.-]+$/;

/** Checks a location read back from Redis (or handed in): null when it is not one. Pure. */
export function parseLocation(value: unknown): CommentLocation | null {
  if (!value || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  if (typeof v.owner !== "string" || typeof v.repo !== "string") return null;
  if (!NAME_RE.test(v.owner) || !NAME_RE.test(v.repo)) return null;
  if (v.kind === "issue" && Number.isSafeInteger(v.number) && (v.number as number) > 0)
    return { kind: "issue", owner: v.owner, repo: v.repo, number: v.number as number };
  if (v.kind === "commit" && typeof v.sha === "string" && SHA_RE.test(v.sha))
    return { kind: "commit", owner: v.owner, repo: v.repo, sha: v.sha };
  return null;
}
