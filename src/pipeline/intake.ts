import type { FixRequest } from "../contracts/fix-request.js";
import { type FetchLike, fetchFailures, parseActionsUrl, renderFailure, triageText } from "../logs/index.js";
import type { LogSummary } from "../publish/report.js";

export interface Intake {
  /** What the agent reads about the failure (already triaged, redacted). */
  context: string;
  logs: LogSummary[];
}

/**
 * From the request's log source to the few lines that matter: an Actions URL is fetched with
 * the given token (the job log streamed and triaged); pasted logs go through the same triage.
 */
export async function gatherFailure(
  request: FixRequest,
  access: { token?: string; fetch?: FetchLike; signal?: AbortSignal },
): Promise<Intake> {
  if (request.url) {
    if (!access.token)
      throw new Error(
        `a GitHub token is needed to read the logs of ${request.url} (set GITHUB_TOKEN, or paste them as raw-logs)`,
      );
    const ref = parseActionsUrl(request.url);
    const failures = await fetchFailures(ref, {
      token: access.token,
      ...(access.fetch ? { fetch: access.fetch } : {}),
      ...(access.signal ? { signal: access.signal } : {}),
    });
    if (failures.length === 0) {
      return { context: `No failed job was found at ${request.url}; rely on the request text.`, logs: [] };
    }
    return {
      context: failures.map((f) => `${renderFailure(f)}\n\nExcerpt:\n${f.triage.excerpt}`).join("\n\n"),
      logs: failures.map((f) => ({
        source: f.job?.url ?? f.label,
        errorClass: f.triage.errorClass,
        failingTests: f.triage.failingTests,
        fingerprint: f.triage.fingerprint,
        excerpt: f.triage.excerpt,
      })),
    };
  }
  const t = triageText(request.rawLogs ?? "");
  return {
    context: t.failureFound ? t.excerpt : (request.rawLogs ?? "").slice(0, 12_000),
    logs: [
      {
        source: "raw logs",
        errorClass: t.errorClass,
        failingTests: t.failingTests,
        fingerprint: t.fingerprint,
        excerpt: t.excerpt,
      },
    ],
  };
}
