import type { Context } from "probot";
import { branchNameFor } from "../publish/push.js";
import { decisionEntry, targetSubject } from "./decisions.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { isAutofixPr } from "./loop-breakers.js";

type ClosedContext = Context<"pull_request.closed">;

/**
 * The target an Autofix branch belongs to (`autofix/<owner>-<repo>-<n>` is `owner/repo#n`),
 * checked by building the name again, so a look-alike branch maps to nothing. Pure.
 */
export function targetOfBranch(
  repo: { owner: string; repo: string },
  branch: string,
): { owner: string; repo: string; number: number } | null {
  const m = /-(\d+)$/.exec(branch);
  if (!m) return null;
  const target = { ...repo, number: Number(m[1]) };
  return branchNameFor(target) === branch ? target : null;
}

/**
 * A closed Autofix PR. Unmerged: new automatic jobs for its failure are blocked until a person
 * asks again (`/autofix` or the trigger label on the tracking issue). Merged: recorded.
 */
export async function onPullRequestClosed(
  context: ClosedContext,
  deps: TriggerDeps,
): Promise<DecisionRecord> {
  const { pull_request: pr, repository, sender } = context.payload;
  if (!isAutofixPr(pr, repository.full_name)) return { decision: "ignored", detail: "not an Autofix PR" };
  const repo = { owner: repository.owner.login, repo: repository.name };
  const target = targetOfBranch(repo, pr.head.ref);
  if (!target) return { decision: "ignored", detail: `branch ${pr.head.ref} names no target` };
  const subject = targetSubject(target);
  await deps.store.decisions.link(targetSubject({ ...repo, number: pr.number }), subject);
  const fingerprint = await deps.store.fingerprintOfTracking(subject);
  const now = deps.now();
  if (pr.merged) {
    await deps.store.decisions.record(
      subject,
      decisionEntry(
        "job",
        `Autofix PR #${pr.number} was merged by @${pr.merged_by?.login ?? sender.login}`,
        now,
      ),
    );
    return { decision: "ignored", detail: `PR #${pr.number} merged` };
  }
  if (fingerprint) {
    await deps.store.blockFingerprint(fingerprint, {
      pr: pr.number,
      closedAt: pr.closed_at ?? now.toISOString(),
      by: sender.login,
    });
  }
  await deps.store.decisions.record(
    subject,
    decisionEntry(
      "loop-breaker",
      `Autofix PR #${pr.number} was closed without merging by @${sender.login}${fingerprint ? ": automatic jobs for this failure are blocked until a person asks again (`/autofix` or the trigger label)" : ""}`,
      now,
    ),
  );
  return {
    decision: "ignored",
    detail: `PR #${pr.number} closed unmerged${fingerprint ? `; ${fingerprint} blocked` : ""}`,
  };
}
