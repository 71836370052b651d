import type { ProbotOctokit } from "probot";

/**
 * The webhook's GitHub reads are bounded: they happen before the job is durably enqueued, and
 * GitHub gives a delivery 10 s (Probot answers "202 still processing" at 9 s, and a 202 says
 * nothing about the job). Inside a delivery every request goes out once (Octokit's retries are
 * off), each within a per-request timeout, all within one budget for the delivery. A request
 * that times out, a 5xx, a rate limit or a network error is `GitHubUnavailable` (HTTP 503 for
 * the webhook's answer), so the delivery fails visibly and can be redelivered; a 4xx is
 * GitHub's real answer and stays what it was.
 */

export interface ReadLimits {
  /** The longest one request may take. */
  requestTimeoutMs: number;
  /** The longest all the delivery's GitHub requests may take together. */
  budgetMs: number;
}

/** Thrown into the webhook when GitHub could not be read in time: the delivery answers 503. */
export class GitHubUnavailable extends Error {
  override readonly name = "GitHubUnavailable";
  /** What the webhook answers (the Octokit webhooks middleware uses an error's `status`). */
  readonly status = 503;
  constructor(
    message: string,
    /** The GitHub status behind it, when GitHub answered. */
    readonly githubStatus?: number,
  ) {
    super(message);
  }
}

/** Whether an error means GitHub could not be read right now (as opposed to a real 4xx answer). Pure. */
export function isGitHubTrouble(err: unknown): boolean {
  if (err instanceof GitHubUnavailable) return true;
  const e = err as { status?: unknown; response?: { headers?: Record<string, string> }; message?: string };
  // Octokit gives a network error status 500; an error without a status is not GitHub's (a YAML error).
  const status = typeof e?.status === "number" ? e.status : undefined;
  if (status === undefined) return false;
  if (status >= 500 || status === 429) return true;
  if (status === 403) {
    const h = e.response?.headers ?? {};
    return (
      h["x-ratelimit-remaining"] === "0" ||
      h["retry-after"] !== undefined ||
      /rate limit/i.test(e.message ?? "")
    );
  }
  return false;
}

function describe(options: { method?: string; url?: string }): string {
  const url = String(options.url ?? "");
  // Keep the route, not the host or the query (the host is the operator's; queries add nothing).
  const path = url.replace(/^[a-z]+:\/\/[^/]+/i, "").replace(/\?.*$/, "");
  return `${options.method ?? "GET"} ${path || "/"}`;
}

/** The request with its URL template filled in (`/repos/o/r/branches/main`), when Octokit can say. */
function expand(request: unknown, options: RequestOptions): { method?: string; url?: string } {
  try {
    const parse = (request as { endpoint?: { parse?: (o: unknown) => { method: string; url: string } } })
      .endpoint?.parse;
    if (parse) return parse(options);
  } catch {
    // fall back to the template
  }
  return options;
}

export interface ReadBudget {
  /** Stop the budget's clock (the delivery is done with GitHub). */
  dispose(): void;
}

type RequestOptions = {
  method?: string;
  url?: string;
  request?: Record<string, unknown> & { signal?: AbortSignal };
};

/**
 * Bound every request `octokit` makes from now on (Probot makes a new installation client per
 * delivery, so this is the delivery's client). Our wrap is the outermost one: it sees the time a
 * request waits in Octokit's throttle too, and a request that would start after the budget
 * fails at once instead of going out.
 */
export function boundReads(octokit: Pick<ProbotOctokit, "hook" | "request">, limits: ReadLimits): ReadBudget {
  const requestTimeoutMs = Math.max(1, Math.min(limits.requestTimeoutMs, limits.budgetMs));
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(), limits.budgetMs);
  timer.unref?.();
  const seconds = (ms: number) => `${Number((ms / 1000).toFixed(2))} s`;

  octokit.hook.wrap("request", async (request, options) => {
    const opts = options as RequestOptions;
    const what = describe(expand(octokit.request, opts));
    if (budget.signal.aborted)
      throw new GitHubUnavailable(
        `GitHub reads took longer than the webhook's ${seconds(limits.budgetMs)} budget (${what} not sent)`,
      );
    const perRequest = new AbortController();
    const requestTimer = setTimeout(() => perRequest.abort(), requestTimeoutMs);
    requestTimer.unref?.();
    const signals = [budget.signal, perRequest.signal];
    if (opts.request?.signal) signals.push(opts.request.signal);
    const signal = AbortSignal.any(signals);
    opts.request = { ...opts.request, retries: 0, signal };
    const timedOut = () =>
      budget.signal.aborted
        ? new GitHubUnavailable(
            `GitHub reads took longer than the webhook's ${seconds(limits.budgetMs)} budget (waiting for ${what})`,
          )
        : new GitHubUnavailable(`GitHub did not answer ${what} within ${seconds(requestTimeoutMs)}`);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(timedOut());
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([request(options), aborted]);
    } catch (err) {
      if (err instanceof GitHubUnavailable) throw err;
      if (signal.aborted) throw timedOut();
      if (isGitHubTrouble(err)) {
        const status = (err as { status?: number }).status;
        throw new GitHubUnavailable(
          status
            ? `GitHub answered ${status} to ${what}`
            : `GitHub could not be reached for ${what}: ${(err as Error).message ?? String(err)}`,
          status,
        );
      }
      throw err;
    } finally {
      clearTimeout(requestTimer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  });
  return { dispose: () => clearTimeout(timer) };
}
