import { constants } from "node:fs";
import { type FileHandle, lstat, open } from "node:fs/promises";
import { dirname, join } from "node:path";
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
  // The file is the commit's, read by the service on the host: never through a link (a commit
  // may hold `.github/autofix.yml -> /etc/...`), never a FIFO, never more than 1 MB.
  let text: string;
  let handle: FileHandle;
  // O_NOFOLLOW covers the file itself; the folder above it must not be a link either.
  const folder = await lstat(join(workspace, dirname(REPO_CONFIG_PATH))).catch(() => null);
  if (!folder) return { config: DEFAULT_REPO_CONFIG, warnings: [] };
  if (!folder.isDirectory())
    throw new RunConfigError(
      `${dirname(REPO_CONFIG_PATH)} is not a folder (a symbolic link?); it must be a real folder`,
    );
  try {
    handle = await open(
      join(workspace, REPO_CONFIG_PATH),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP")
      throw new RunConfigError(`${REPO_CONFIG_PATH} is a symbolic link; it must be a regular file`);
    return { config: DEFAULT_REPO_CONFIG, warnings: [] };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new RunConfigError(`${REPO_CONFIG_PATH} is not a regular file`);
    if (st.size > 1024 * 1024) throw new RunConfigError(`${REPO_CONFIG_PATH} is larger than 1 MB`);
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  const r = parseRepoConfig(text);
  if (!r.ok) throw new RunConfigError(`${REPO_CONFIG_PATH} is invalid: ${r.errors.join("; ")}`);
  return { config: r.config, warnings: r.warnings };
}

export class RunConfigError extends Error {
  override name = "RunConfigError";
}
