import type { Context } from "probot";
import {
  REPO_CONFIG_FILE,
  REPO_CONFIG_PATH,
  type RepoConfig,
  validateRepoConfig,
} from "../config/repo-config.js";

export type LoadedConfig =
  | { ok: true; config: RepoConfig; warnings: string[] }
  | { ok: false; errors: string[] };

/**
 * Read `.github/autofix.yml` through Probot (which also honours the org-wide `.github`
 * repository and `_extends`) and validate it. A YAML error or a failed fetch is reported like
 * any other config error, never thrown into the webhook.
 */
export async function loadRepoConfig(context: Context): Promise<LoadedConfig> {
  let raw: unknown;
  try {
    raw = await context.config(REPO_CONFIG_FILE);
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status !== undefined && status >= 500) throw err; // GitHub trouble: let the delivery fail and be retried
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
