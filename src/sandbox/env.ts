import { isSecretEnvName } from "../shared/redact.js";

/**
 * The environment a job's commands start from on the host backend: the service's own, minus
 * every name that could carry a secret, plus the job's variables. Pure.
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

/** The environment commands see: `env` minus every secret, prompts off, then `extra` (also filtered). */
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
