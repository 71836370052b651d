import type { ProbotOctokit } from "probot";
import { isGitHubTrouble } from "./budget.js";
import { ReadCache } from "./read-cache.js";

/**
 * Who may start or control jobs: people whose permission on the repository (from the
 * collaborator-permission API, not `author_association`) is write, maintain or admin; bots only
 * when the repository config lists them. A lookup GitHub answers with an error (a 4xx) denies;
 * GitHub trouble (a 5xx, a timeout, a rate limit: see budget.ts) is thrown, so the webhook answers
 * 503 and the delivery can be redelivered instead of being answered "denied".
 */

export const ALLOWED_ROLES = ["admin", "maintain", "write"] as const;

export interface Sender {
  login: string;
  type: string; // "User" | "Bot" | "Organization"
}

export type AuthDecision =
  | { allowed: true; reason: "permission" | "allowlisted-bot"; role?: string }
  | { allowed: false; reason: "permission" | "bot" | "lookup-failed"; role?: string; error?: string };

function normalizeBot(login: string): string {
  return login.toLowerCase().replace(/\[bot\]$/, "");
}

export function isBot(sender: Sender): boolean {
  return sender.type === "Bot" || /\[bot\]$/i.test(sender.login);
}

/** The role to judge by: `role_name` knows maintain and triage; `permission` folds them into write/read. */
export function roleOf(data: { permission?: string; role_name?: string }): string {
  return (data.role_name || data.permission || "none").toLowerCase();
}

export function roleAllows(role: string): boolean {
  return (ALLOWED_ROLES as readonly string[]).includes(role);
}

/**
 * People's roles per repository, kept 60 s so a burst of comments from one person costs one
 * lookup (concurrent lookups share it; a failed lookup is not kept): the webhook's read cache.
 */
export class PermissionCache extends ReadCache<string> {
  constructor(ttlMs = 60_000, now: () => number = Date.now) {
    super(ttlMs, now);
  }
}

export async function authorizeSender(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  sender: Sender,
  allowedBots: readonly string[],
  cache: PermissionCache,
): Promise<AuthDecision> {
  if (isBot(sender)) {
    const allowed = allowedBots.map(normalizeBot).includes(normalizeBot(sender.login));
    return allowed ? { allowed: true, reason: "allowlisted-bot" } : { allowed: false, reason: "bot" };
  }
  const key = `${repo.owner}/${repo.repo}:${sender.login}`.toLowerCase();
  let role: string;
  try {
    role = await cache.get(key, async () => {
      const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({
        ...repo,
        username: sender.login,
      });
      return roleOf(data);
    });
  } catch (err) {
    if (isGitHubTrouble(err)) throw err;
    return { allowed: false, reason: "lookup-failed", error: (err as Error).message };
  }
  return roleAllows(role)
    ? { allowed: true, reason: "permission", role }
    : { allowed: false, reason: "permission", role };
}
