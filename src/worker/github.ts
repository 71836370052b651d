import { Probot, type ProbotOctokit } from "probot";
import type { Logger } from "../shared/logger.js";
import { redactor } from "../shared/redact.js";
import type { GitHubAccess, GitHubFactory } from "./types.js";

/**
 * Installation-scoped GitHub access minted from the App credentials for each job. No token
 * travels in job data; every token minted here is registered with the redactor.
 */
export function createAppGitHubFactory(opts: {
  appId: string | number;
  privateKey: string;
  githubApiUrl: string;
  logger?: Logger;
}): GitHubFactory {
  const probot = new Probot({
    appId: opts.appId,
    privateKey: opts.privateKey,
    baseUrl: opts.githubApiUrl,
    ...(opts.logger ? { log: opts.logger } : {}),
  });
  return async (installationId: number): Promise<GitHubAccess> => {
    const octokit: ProbotOctokit = await probot.auth(installationId);
    const access: GitHubAccess = {
      octokit,
      async token() {
        // @octokit/auth-app caches installation tokens and mints a new one before expiry.
        const auth = (await octokit.auth({ type: "installation" })) as { token?: string };
        if (!auth.token) throw new Error(`no installation token for installation ${installationId}`);
        redactor.addSecret(auth.token);
        return auth.token;
      },
    };
    // Mint (and register with the redactor) before the first API call can log anything.
    await access.token();
    return access;
  };
}
