import type { ProbotOctokit } from "probot";
import { findPeoplesWork, type PeoplesWork, peoplesWorkList } from "../publish/people.js";

export { findPeoplesWork, type PeoplesWork, peoplesWorkList } from "../publish/people.js";

/** A search before the enqueue is bounded: GitHub trouble must not hold the webhook near Probot's 9 s. */
export const PEOPLE_SEARCH_TIMEOUT_MS = 3000;

export type PeopleCheck =
  | { found: PeoplesWork[]; text: string }
  | { found: null; text: string; error: string };

/**
 * The people's-work check of an automatic job: the failing test id, the fingerprint and the
 * tracking issue. A failed search does not stop the job (it is a courtesy, not a control):
 * the decision says it could not look.
 */
export async function checkPeoplesWork(
  octokit: ProbotOctokit,
  q: {
    owner: string;
    repo: string;
    testId?: string;
    fingerprint: string;
    trackingIssue: number;
    appId?: string;
  },
): Promise<PeopleCheck> {
  try {
    const found = await findPeoplesWork(octokit, {
      owner: q.owner,
      repo: q.repo,
      terms: [q.testId ?? "", q.fingerprint, `#${q.trackingIssue}`],
      exclude: [q.trackingIssue],
      ...(q.appId ? { appId: q.appId } : {}),
      signal: AbortSignal.timeout(PEOPLE_SEARCH_TIMEOUT_MS),
    });
    return {
      found,
      text:
        found.length === 0
          ? `no open issue or PR by others references ${q.testId ? `\`${q.testId}\`` : "this failure"}`
          : `open work by others references this failure: ${found.map((f) => `#${f.number}`).join(", ")}`,
    };
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0] ?? "error";
    return { found: null, error: msg, text: `could not search for people's work (${msg}); started anyway` };
  }
}

/** The tracking issue's note when people's work holds an automatic job back. Pure. */
export function peoplesWorkNotice(found: readonly PeoplesWork[], testId?: string): string {
  return [
    `Autofix did not start an automatic job: open work by others already references ${testId ? `\`${testId.replace(/`/g, "'")}\`` : "this failure"}, and Autofix does not race it:`,
    "",
    peoplesWorkList(found),
    "",
    "Comment `/autofix` here to start a job anyway.",
  ].join("\n");
}
