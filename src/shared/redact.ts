/**
 * The one redactor for every text that leaves the process: comments, PR bodies, reports,
 * logs, transcripts. It knows the public formats of the secrets this service handles and,
 * on top of that, the live secret values this process holds (registered at start-up and
 * whenever a token is minted).
 */

const REPLACEMENT = "[REDACTED]";

/** Known secret formats. Each is anchored so look-alikes (short, wrong prefix) stay untouched. */
const PATTERNS: ReadonlyArray<{ name: string; re: RegExp }> = [
  // PEM private keys (RSA, EC, OpenSSH, PKCS#8, encrypted); also with literal "\n" escapes.
  {
    name: "private-key",
    re: /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/g,
  },
  // Fine-grained personal access tokens.
  { name: "github-pat", re: /\bgithub_pat_[A-Za-z0-9_]{50,255}\b/g },
  // Classic tokens: ghp_ (PAT), gho_ (OAuth), ghu_ (user-to-server), ghs_ (installation,
  // including the long variable-length format), ghr_ (refresh). 36+ characters after the prefix.
  { name: "github-token", re: /\bgh[pousr]_[A-Za-z0-9_]{36,1024}\b/g },
  // Anthropic API, admin and OAuth keys: sk-ant-api03-..., sk-ant-admin01-..., sk-ant-oat01-...
  { name: "anthropic-key", re: /\bsk-ant-[a-z]{2,10}\d{2}-[A-Za-z0-9_-]{20,}/g },
  // Credentials embedded in URLs: https://user:secret@host, https://x-access-token:secret@host
  { name: "url-credentials", re: /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:)[^\s@/]+@/gi },
  // HTTP authorization headers echoed in logs.
  { name: "authorization", re: /(\bauthorization:\s*(?:bearer|token|basic)\s+)[A-Za-z0-9._~+/=-]{8,}/gi },
];

/** Values shorter than this are too likely to occur by chance to be redacted by value. */
const MIN_LIVE_SECRET_LENGTH = 8;

export class Redactor {
  #live = new Set<string>();
  #liveRe: RegExp | null = null;

  /** Remember a secret value held by this process (token, key, webhook secret). */
  addSecret(value: string | undefined | null): void {
    if (!value) return;
    const variants = [value, value.trim()];
    // Keys passed through the environment often carry literal "\n" instead of newlines.
    if (value.includes("\n")) variants.push(value.replace(/\n/g, "\\n"));
    if (value.includes("\\n")) variants.push(value.replace(/\\n/g, "\n"));
    let changed = false;
    for (const v of variants) {
      if (v.length >= MIN_LIVE_SECRET_LENGTH && !this.#live.has(v)) {
        this.#live.add(v);
        changed = true;
      }
    }
    if (changed) this.#liveRe = null;
  }

  removeSecret(value: string): void {
    if (this.#live.delete(value)) this.#liveRe = null;
  }

  /** Redact one string. */
  redact(text: string): string {
    if (!text) return text;
    let out = text;
    if (this.#live.size > 0) {
      this.#liveRe ??= new RegExp(
        [...this.#live]
          .sort((a, b) => b.length - a.length)
          .map(escapeRegExp)
          .join("|"),
        "g",
      );
      out = out.replace(this.#liveRe, REPLACEMENT);
    }
    for (const { name, re } of PATTERNS) {
      if (name === "url-credentials" || name === "authorization") {
        out = out.replace(re, `$1${REPLACEMENT}${name === "url-credentials" ? "@" : ""}`);
      } else {
        out = out.replace(re, REPLACEMENT);
      }
    }
    return out;
  }

  /** Redact every string inside a JSON-like value (for structured logs and job snapshots). */
  redactDeep<T>(value: T, seen = new WeakSet<object>()): T {
    if (typeof value === "string") return this.redact(value) as T;
    if (value === null || typeof value !== "object") return value;
    if (seen.has(value as object)) return value;
    seen.add(value as object);
    if (Array.isArray(value)) return value.map((v) => this.redactDeep(v, seen)) as T;
    if (value instanceof Error) {
      const copy = new Error(this.redact(value.message));
      copy.name = value.name;
      if (value.stack) copy.stack = this.redact(value.stack);
      return copy as T;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
      return value;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = this.redactDeep(v, seen);
    }
    return out as T;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The process-wide redactor. Secrets from the environment are registered by loadSettings(). */
export const redactor = new Redactor();

export function redact(text: string): string {
  return redactor.redact(text);
}

/** Environment variable names whose values are secrets, by exact name or suffix. */
export function isSecretEnvName(name: string): boolean {
  return (
    /^(PRIVATE_KEY|WEBHOOK_SECRET|GITHUB_TOKEN|GH_TOKEN|ANTHROPIC_API_KEY|ANTHROPIC_AUTH_TOKEN|CLIENT_SECRET|GITHUB_CLIENT_SECRET|REDIS_PASSWORD|AUTOFIX_DASHBOARD_PASSWORD)$/.test(
      name,
    ) || /(_TOKEN|_SECRET|_PASSWORD|_API_KEY|_PRIVATE_KEY)$/.test(name)
  );
}

/** Register every secret-looking value of an environment with the process redactor. */
export function registerEnvSecrets(env: NodeJS.ProcessEnv, target: Redactor = redactor): void {
  for (const [name, value] of Object.entries(env)) {
    if (value && isSecretEnvName(name)) target.addSecret(value);
  }
  // A password inside REDIS_URL is a secret too.
  const redisUrl = env.REDIS_URL;
  if (redisUrl) {
    try {
      const u = new URL(redisUrl);
      if (u.password) target.addSecret(decodeURIComponent(u.password));
    } catch {
      // An invalid URL is reported by settings validation.
    }
  }
}
