import type { Context } from "probot";
import {
  REPO_CONFIG_FILE,
  REPO_CONFIG_PATH,
  type RepoConfig,
  validateRepoConfig,
} from "../config/repo-config.js";
import { isGitHubTrouble } from "./budget.js";
import type { ReadCache } from "./read-cache.js";

export type LoadedConfig =
  | { ok: true; config: RepoConfig; warnings: string[] }
  | { ok: false; errors: string[] };

/**
 * Read `.github/autofix.yml` through Probot (which also honours the org-wide `.github`
 * repository and `_extends`) and validate it. A YAML error or a fetch GitHub refused (a 4xx) is
 * reported like any other config error; GitHub trouble is thrown so the delivery answers 503.
 * With a cache (the web's: CONFIG_CACHE_SECONDS), one read per repository serves a burst, and
 * a changed file applies within that time.
 */
export async function loadRepoConfig(
  context: Context,
  cache?: ReadCache<LoadedConfig>,
): Promise<LoadedConfig> {
  if (!cache) return readRepoConfig(context);
  const repo = context.repo();
  return cache.get(`${repo.owner}/${repo.repo}`.toLowerCase(), () => readRepoConfig(context));
}

async function readRepoConfig(context: Context): Promise<LoadedConfig> {
  let raw: unknown;
  try {
    raw = await context.config(REPO_CONFIG_FILE);
  } catch (err) {
    // GitHub trouble (a 5xx, a timeout, a rate limit): let the delivery fail and be redelivered.
    if (isGitHubTrouble(err)) throw err;
    return {
      ok: false,
      errors: [`cannot read ${REPO_CONFIG_PATH}: ${(err as Error).message.split("\n")[0]}`],
    };
  }
  const r = validateRepoConfig(raw ?? {});
  return r.ok ? { ok: true, config: r.config, warnings: r.warnings } : { ok: false, errors: r.errors };
}

export function configErrorText(errors: string[]): string {
  return [
    `Autofix did not run: \`${REPO_CONFIG_PATH}\` is invalid.`,
    "",
    "```",
    ...errors,
    "```",
    "",
    "Fix the file (check it locally with `autofix config check`) and trigger again.",
  ].join("\n");
}
