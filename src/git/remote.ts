import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type CommandResult, runHostCommand } from "../shared/process.js";
import { redact } from "../shared/redact.js";
import { shellQuote } from "../shared/shell.js";
import { SAFE_GIT_CONFIG, SAFE_GIT_ENV } from "./safe.js";

/**
 * The service's own git on the host (mirror fetches, job repositories, the push), with the
 * harness rules of src/git/safe.ts (hooks and fsmonitor off, system and global config
 * ignored) and credentials that never touch argv, a URL or .git/config: the token travels in
 * the environment (AUTOFIX_GIT_TOKEN) to a tiny credential helper script, which git runs
 * when the remote asks for a password.
 */

export const GIT_TOKEN_ENV = "AUTOFIX_GIT_TOKEN";

export const CREDENTIAL_HELPER_SCRIPT = `#!/bin/sh
# Autofix git credential helper: answers "get" with the token from the environment.
# It stores nothing and prints nothing for "store" or "erase".
[ "$1" = get ] || exit 0
[ -n "$${GIT_TOKEN_ENV}" ] || exit 0
printf 'username=x-access-token\\npassword=%s\\n' "$${GIT_TOKEN_ENV}"
`;

/**
 * The `-c` options that make git use only our helper. The first empty value clears helpers
 * from the system and user configuration (a cached token of someone else, a store file).
 */
export function credentialArgs(helperPath: string): string[] {
  return ["-c", "credential.helper=", "-c", `credential.helper=!${shellQuote(helperPath)}`];
}

/** The environment for a git command: the token (if any) only here, prompts off. */
export function gitEnv(base: NodeJS.ProcessEnv, token: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...SAFE_GIT_ENV, GCM_INTERACTIVE: "never" };
  delete env[GIT_TOKEN_ENV];
  delete env.GIT_ASKPASS;
  delete env.SSH_ASKPASS;
  if (token) env[GIT_TOKEN_ENV] = token;
  return env;
}

/** Write the helper script once (idempotent); returns its path. */
export async function ensureCredentialHelper(path: string): Promise<string> {
  let current: string | null = null;
  try {
    current = await readFile(path, "utf8");
  } catch {
    current = null;
  }
  if (current !== CREDENTIAL_HELPER_SCRIPT) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, CREDENTIAL_HELPER_SCRIPT, { mode: 0o700 });
  }
  await chmod(path, 0o700);
  return path;
}

export class RemoteGitError extends Error {
  constructor(
    message: string,
    readonly result: CommandResult,
  ) {
    super(message);
    this.name = "RemoteGitError";
  }
}

export interface GitOptions {
  cwd?: string;
  token?: string;
  helperPath: string;
  baseEnv?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Run git; resolves with the result (check exitCode), output redacted. */
export async function remoteGit(args: readonly string[], opts: GitOptions): Promise<CommandResult> {
  const r = await runHostCommand(["git", ...SAFE_GIT_CONFIG, ...credentialArgs(opts.helperPath), ...args], {
    env: gitEnv(opts.baseEnv ?? process.env, opts.token),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    timeoutMs: opts.timeoutMs ?? 30 * 60_000,
  });
  return { ...r, stdout: redact(r.stdout), stderr: redact(r.stderr) };
}

/** Run git and throw a RemoteGitError with git's message when it fails. */
export async function remoteGitOk(args: readonly string[], opts: GitOptions): Promise<string> {
  const r = await remoteGit(args, opts);
  if (r.exitCode !== 0) {
    const why = r.cancelled
      ? "cancelled"
      : r.timedOut
        ? "timed out"
        : r.stderr.trim().split("\n").slice(-2).join(" | ") || `exit code ${r.exitCode}`;
    throw new RemoteGitError(`git ${args[0] ?? ""} failed: ${why}`, r);
  }
  return r.stdout;
}
