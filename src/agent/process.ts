import { type ProcessResult, runProcess } from "../shared/process.js";
import { isSecretEnvName } from "../shared/redact.js";

/**
 * Commands for the agent and the gates: the shared process runner (src/shared/process.ts)
 * under `bash -c`, with a scrubbed environment.
 */

/** Names dropped from every command's environment, besides anything isSecretEnvName() flags. */
export function isScrubbedEnvName(name: string): boolean {
  return (
    isSecretEnvName(name) ||
    /^PRIVATE_KEY/i.test(name) ||
    /^ANTHROPIC_/i.test(name) ||
    /^(REDIS_URL|WEBHOOK_PROXY_URL|GITHUB_APP_.*|APP_ID)$/i.test(name) ||
    /(token|secret|password|passwd|api_?key|private_?key|credentials?)$/i.test(name)
  );
}

/** The environment commands see: the harness's, minus every secret. Pure. */
export function scrubEnv(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !isScrubbedEnvName(k)) out[k] = v;
  }
  // Nothing may wait for a password on a terminal that is not there.
  out.GIT_TERMINAL_PROMPT = "0";
  out.GIT_ASKPASS = "/bin/false";
  for (const [k, v] of Object.entries(extra)) if (!isScrubbedEnvName(k)) out[k] = v;
  return out;
}

export interface RunOptions {
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Delay between SIGTERM and SIGKILL. */
  graceMs?: number;
  /** Defaults to scrubEnv(process.env). */
  env?: Record<string, string>;
  headBytes?: number;
  tailBytes?: number;
}

export type CommandResult = ProcessResult;

/** A command of the agent or a gate: `bash -c`, its own process group, no secrets in its environment. */
export function runCommand(command: string, opts: RunOptions): Promise<CommandResult> {
  return runProcess(command, {
    cwd: opts.cwd,
    env: opts.env ?? scrubEnv(process.env),
    timeoutMs: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.graceMs !== undefined ? { killGraceMs: opts.graceMs } : {}),
    ...(opts.headBytes !== undefined ? { headBytes: opts.headBytes } : {}),
    ...(opts.tailBytes !== undefined ? { tailBytes: opts.tailBytes } : {}),
  });
}

/** Quote one word for bash. Pure. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
