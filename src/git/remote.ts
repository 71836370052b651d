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

/** Where the token may go: the remote's protocol, host and path (set beside the token). */
export const GIT_TOKEN_FOR_ENV = {
  protocol: "AUTOFIX_GIT_PROTOCOL",
  host: "AUTOFIX_GIT_HOST",
  path: "AUTOFIX_GIT_PATH",
} as const;

export const CREDENTIAL_HELPER_SCRIPT = `#!/bin/sh
# Autofix git credential helper: answers "get" with the token from the environment, and only
# for the protocol, host and path the service named beside it (git sends the path because the
# service runs it with credential.useHttpPath). It stores nothing and prints nothing for
# "store" or "erase", or for any other host.
[ "$1" = get ] || exit 0
[ -n "$${GIT_TOKEN_ENV}" ] || exit 0
[ -n "$${GIT_TOKEN_FOR_ENV.host}" ] || exit 0
proto= host= path=
while IFS= read -r line; do
  [ -z "$line" ] && break
  case "$line" in
    protocol=*) proto=\${line#protocol=} ;;
    host=*) host=\${line#host=} ;;
    path=*) path=\${line#path=} ;;
  esac
done
[ "$proto" = "$${GIT_TOKEN_FOR_ENV.protocol}" ] || exit 0
[ "$host" = "$${GIT_TOKEN_FOR_ENV.host}" ] || exit 0
[ "\${path%.git}" = "\${${GIT_TOKEN_FOR_ENV.path}%.git}" ] || exit 0
printf 'username=x-access-token\\npassword=%s\\n' "$${GIT_TOKEN_ENV}"
`;

/** The protocol, host and path a remote URL gives the credential helper; null when it takes none. Pure. */
export function credentialTarget(remoteUrl: string): { protocol: string; host: string; path: string } | null {
  let u: URL;
  try {
    u = new URL(remoteUrl);
  } catch {
    return null;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return null;
  return {
    protocol: u.protocol.slice(0, -1),
    host: u.host,
    path: decodeURIComponent(u.pathname.replace(/^\/+/, "")),
  };
}

/**
 * The `-c` options that make git use only our helper. The first empty value clears helpers
 * from the system and user configuration (a cached token of someone else, a store file).
 */
export function credentialArgs(helperPath: string): string[] {
  return [
    "-c",
    "credential.helper=",
    "-c",
    `credential.helper=!${shellQuote(helperPath)}`,
    "-c",
    "credential.useHttpPath=true",
  ];
}

/**
 * The protocols git may use for `remoteUrl`: https (http only when the remote itself is http,
 * a GHE on http), file only when the remote is a local path; ext, ssh and the rest never, so no
 * config can turn the push into a command or send it elsewhere.
 */
export function protocolArgs(remoteUrl: string | undefined): string[] {
  const allow = ["https"];
  if (remoteUrl?.startsWith("http://")) allow.push("http");
  if (remoteUrl?.startsWith("file://") || remoteUrl?.startsWith("/")) allow.push("file");
  return ["-c", "protocol.allow=never", ...allow.flatMap((p) => ["-c", `protocol.${p}.allow=always`])];
}

/**
 * The environment for a git command: the token (if any) only here, with the one remote it is
 * for (the helper answers no other), prompts off.
 */
export function gitEnv(
  base: NodeJS.ProcessEnv,
  token: string | undefined,
  remoteUrl?: string,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...SAFE_GIT_ENV, GCM_INTERACTIVE: "never" };
  delete env[GIT_TOKEN_ENV];
  for (const name of Object.values(GIT_TOKEN_FOR_ENV)) delete env[name];
  delete env.GIT_ASKPASS;
  delete env.SSH_ASKPASS;
  const target = remoteUrl ? credentialTarget(remoteUrl) : null;
  if (token && target) {
    env[GIT_TOKEN_ENV] = token;
    env[GIT_TOKEN_FOR_ENV.protocol] = target.protocol;
    env[GIT_TOKEN_FOR_ENV.host] = target.host;
    env[GIT_TOKEN_FOR_ENV.path] = target.path;
  }
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
  /**
   * The remote this command talks to: the only one the token is answered for and the only
   * protocol family allowed. Without it, the token is not offered at all.
   */
  remoteUrl?: string;
}

/** Run git; resolves with the result (check exitCode), output redacted. */
export async function remoteGit(args: readonly string[], opts: GitOptions): Promise<CommandResult> {
  const r = await runHostCommand(
    ["git", ...SAFE_GIT_CONFIG, ...credentialArgs(opts.helperPath), ...protocolArgs(opts.remoteUrl), ...args],
    {
      env: gitEnv(opts.baseEnv ?? process.env, opts.token, opts.remoteUrl),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      timeoutMs: opts.timeoutMs ?? 30 * 60_000,
    },
  );
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
