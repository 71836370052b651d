/**
 * The rules for every git command the service itself runs (never the model's): hooks and
 * fsmonitor off, no signing prompts, a fixed identity. Commits carrying COMMIT_EMAIL are the
 * only ones a push may replace.
 */

/** Author and committer email of every commit the harness makes. */
export const COMMIT_EMAIL = "autofix@users.noreply.github.com";

export const SAFE_GIT_CONFIG: readonly string[] = [
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "core.fsmonitor=false",
  "-c",
  "core.quotePath=false",
  "-c",
  "commit.gpgSign=false",
  "-c",
  "user.name=autofix",
  "-c",
  `user.email=${COMMIT_EMAIL}`,
];

/** Environment for the service's git: no system or global config, no prompts. */
export const SAFE_GIT_ENV: Readonly<Record<string, string>> = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
};
