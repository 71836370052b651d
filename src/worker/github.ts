import { Probot, ProbotOctokit } from "probot";
import type { Logger } from "../shared/logger.js";
import { redactor } from "../shared/redact.js";
import type { GitHubAccess, GitHubFactory } from "./types.js";

/**
 * Installation-scoped GitHub access minted from the App credentials for each job. No token
 * travels in job data; every token minted here is registered with the redactor before use.
 *
 * Tokens are minted with the app's JWT through `POST /app/installations/{id}/access_tokens`
 * on the configured API base (github.com or GHE), cached, and renewed ten minutes before
 * they expire, so a long job keeps working past the one-hour token lifetime. The job's
 * Octokit asks for the current token on every request.
 */

const RENEW_BEFORE_MS = 10 * 60_000;

interface CachedToken {
  token: string;
  expiresAt: number;
}

type TokenSource = () => Promise<string>;

/** An Octokit auth strategy that takes the token from a function (renewed behind the scenes). */
function tokenSourceStrategy(source: TokenSource) {
  return () => {
    const auth = async () => ({ type: "token", tokenType: "installation", token: await source() });
    auth.hook = async (
      request: ((opts: unknown) => Promise<unknown>) & {
        endpoint: { merge: (r: unknown, p?: unknown) => { headers: Record<string, string> } };
      },
      route: unknown,
      parameters?: unknown,
    ) => {
      const endpoint = request.endpoint.merge(route, parameters);
      endpoint.headers.authorization = `token ${await source()}`;
      return request(endpoint);
    };
    return auth;
  };
}

export function createAppGitHubFactory(opts: {
  appId: string | number;
  privateKey: string;
  githubApiUrl: string;
  logger?: Logger;
  /** For tests: the current time. */
  now?: () => number;
  /**
   * Octokit's write throttling (one write per second, GitHub's advice against secondary rate
   * limits). On by default; tests against a local fake API turn it off.
   */
  throttle?: boolean;
}): GitHubFactory {
  const now = opts.now ?? Date.now;
  const probot = new Probot({
    appId: opts.appId,
    privateKey: opts.privateKey,
    baseUrl: opts.githubApiUrl,
    ...(opts.logger ? { log: opts.logger } : {}),
  });
  let appOctokit: Promise<ProbotOctokit> | null = null;
  const cache = new Map<number, CachedToken>();
  const inflight = new Map<number, Promise<string>>();

  async function mint(installationId: number): Promise<string> {
    const cached = cache.get(installationId);
    if (cached && cached.expiresAt - now() > RENEW_BEFORE_MS) return cached.token;
    const pending = inflight.get(installationId);
    if (pending) return pending;
    const p = (async () => {
      appOctokit ??= probot.auth();
      const app = await appOctokit;
      const { data } = await app.rest.apps.createInstallationAccessToken({ installation_id: installationId });
      redactor.addSecret(data.token);
      cache.set(installationId, {
        token: data.token,
        expiresAt: Date.parse(data.expires_at) || now() + 3600_000,
      });
      return data.token;
    })();
    inflight.set(installationId, p);
    try {
      return await p;
    } finally {
      inflight.delete(installationId);
    }
  }

  return async (installationId: number): Promise<GitHubAccess> => {
    const source = () => mint(installationId);
    // Mint (and register with the redactor) before the first API call can log anything.
    await source();
    const octokit = new ProbotOctokit({
      baseUrl: opts.githubApiUrl,
      authStrategy: tokenSourceStrategy(source),
      ...(opts.throttle === false ? { throttle: { enabled: false } } : {}),
      ...(opts.logger ? { log: opts.logger.child({ name: "octokit" }) } : {}),
    }) as ProbotOctokit;
    return { octokit, token: source };
  };
}
