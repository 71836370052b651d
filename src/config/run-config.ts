import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_REPO_CONFIG, parseRepoConfig, REPO_CONFIG_PATH, type RepoConfig } from "./repo-config.js";

/**
 * The run-time repository config: `.github/autofix.yml` as committed at the job's commit, read
 * once per job from the workspace and handed to everything that runs the job (the agent's
 * budgets and commands, the gates' stability bars, the PR's workflow map, the card reset).
 *
 * It differs from the trigger-time config (src/triggers/repo-config.ts): the web process reads
 * the file from the default branch through Probot, which also follows `_extends` and the
 * organisation's `.github` repository, to decide who may trigger (allowed_bots), which pool a
 * job goes to (pool_rules, default_pool) and the CI thresholds. A job therefore runs with the
 * commit's own budgets and commands, while whether and where it runs was decided by the
 * default branch's file. `_extends` is not followed at run time.
 */
export async function readRunConfig(workspace: string): Promise<{ config: RepoConfig; warnings: string[] }> {
  let text: string;
  try {
    text = await readFile(join(workspace, REPO_CONFIG_PATH), "utf8");
  } catch {
    return { config: DEFAULT_REPO_CONFIG, warnings: [] };
  }
  const r = parseRepoConfig(text);
  if (!r.ok) throw new RunConfigError(`${REPO_CONFIG_PATH} is invalid: ${r.errors.join("; ")}`);
  return { config: r.config, warnings: r.warnings };
}

export class RunConfigError extends Error {
  override name = "RunConfigError";
}
