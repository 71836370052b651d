import type { ProbotOctokit } from "probot";

/**
 * Don't race people: before an automatic job starts and before a fix PR opens, look for open
 * issues and PRs that already reference the same failing test, fingerprint or tracking issue
 * (by anyone, bots included), except the app's own tracking issue and PRs. One bounded search
 * (`GET /search/issues`, one page of 20); the caller links what it finds instead of racing it.
 */

export interface PeoplesWork {
  number: number;
  title: string;
  url: string;
  author: string;
  pullRequest: boolean;
}

export interface PeopleQuery {
  owner: string;
  repo: string;
  /** Exact phrases: a test id, a fingerprint, `#123` of the tracking issue. Empty ones are dropped. */
  terms: readonly string[];
  /** Numbers never reported (the tracking issue itself, the app's own PR). */
  exclude?: readonly number[];
  /** The app's id: items created through it are the app's own. */
  appId?: string;
  signal?: AbortSignal;
}

/** The search query: `repo:o/r is:open "a" OR "b"`, quotes removed from the phrases. Pure. */
export function peopleSearchQuery(q: Pick<PeopleQuery, "owner" | "repo" | "terms">): string | null {
  const phrases = [
    ...new Set(q.terms.map((t) => t.replace(/["\\\r\n]/g, " ").trim()).filter((t) => t.length >= 2)),
  ]
    .slice(0, 5)
    .map((t) => `"${t.slice(0, 120)}"`);
  if (phrases.length === 0) return null;
  return `repo:${q.owner}/${q.repo} is:open ${phrases.join(" OR ")}`;
}

interface SearchItem {
  number: number;
  title: string;
  html_url: string;
  body?: string | null;
  user?: { login?: string; type?: string } | null;
  pull_request?: unknown;
  performed_via_github_app?: { id?: number } | null;
}

/** Whether a search hit is the app's own (its tracking issues and fix PRs). Pure. */
export function isOwnItem(item: SearchItem, appId?: string): boolean {
  if (
    appId &&
    item.performed_via_github_app?.id !== undefined &&
    String(item.performed_via_github_app.id) === appId
  )
    return true;
  const bot = item.user?.type === "Bot" || /\[bot\]$/i.test(item.user?.login ?? "");
  return bot && /<!-- autofix:(pr|tracking)\b/.test(item.body ?? "");
}

/** Open issues and PRs by others that reference the terms. Throws on an API error (the caller decides). */
export async function findPeoplesWork(octokit: ProbotOctokit, q: PeopleQuery): Promise<PeoplesWork[]> {
  const query = peopleSearchQuery(q);
  if (!query) return [];
  const { data } = await octokit.rest.search.issuesAndPullRequests({
    q: query,
    per_page: 20,
    ...(q.signal ? { request: { signal: q.signal } } : {}),
  });
  const exclude = new Set(q.exclude ?? []);
  return (data.items as SearchItem[])
    .filter((i) => !exclude.has(i.number) && !isOwnItem(i, q.appId))
    .slice(0, 10)
    .map((i) => ({
      number: i.number,
      title: i.title,
      url: i.html_url,
      author: i.user?.login ?? "someone",
      pullRequest: i.pull_request != null,
    }));
}

/** One line per item, as a Markdown list; titles are people's text, shown as code. Pure. */
export function peoplesWorkList(items: readonly PeoplesWork[]): string {
  return items
    .map(
      (i) =>
        `- ${i.pullRequest ? "PR" : "issue"} #${i.number} by **${i.author.replace(/[^\w.[\]-]/g, "")}**: \`${i.title.replace(/`/g, "'").slice(0, 100)}\``,
    )
    .join("\n");
}

/**
 * Before an automatic job opens its PR: open work by others on the same failing test or
 * tracking issue means the PR is not opened (the reason says what to look at).
 * Null to go ahead; a failed search goes ahead (the search is a courtesy, not a control).
 */
export async function peoplesWorkBeforePr(
  octokit: ProbotOctokit,
  q: { owner: string; repo: string; trackingIssue: number; testIds: readonly string[]; signal?: AbortSignal },
): Promise<string | null> {
  let found: PeoplesWork[];
  try {
    found = await findPeoplesWork(octokit, {
      owner: q.owner,
      repo: q.repo,
      terms: [...q.testIds.slice(0, 2), `#${q.trackingIssue}`],
      exclude: [q.trackingIssue],
      signal: q.signal
        ? AbortSignal.any([q.signal, AbortSignal.timeout(10_000)])
        : AbortSignal.timeout(10_000),
    });
  } catch {
    return null;
  }
  if (found.length === 0) return null;
  return `open work by others already references this failure (${found
    .slice(0, 5)
    .map((f) => `${f.pullRequest ? "PR" : "issue"} #${f.number}`)
    .join(
      ", ",
    )}), so Autofix did not open a PR to race it; the proven fix is in the report and on the pushed branch`;
}
