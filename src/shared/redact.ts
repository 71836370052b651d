/**
 * The one redactor for every text that leaves the process: comments, PR bodies, reports,
 * logs, transcripts. It knows the public formats of the secrets this service handles and,
 * on top of that, the live secret values this process holds (registered at start-up and
 * whenever a token is minted). The formats are data (secret-rules.ts). Redact before clipping:
 * a text cut first can leave half a token that no rule recognises any more.
 */

import { SECRET_RULES, TOKEN_BOUNDARY } from "./secret-rules.js";

const REPLACEMENT = "[REDACTED]";

/** A rule compiled once: the data in secret-rules.ts with its boundary filled in. */
interface CompiledRule {
  id: string;
  re: RegExp;
  /** The rule's `{B}`: checked on each match. */
  bounded: boolean;
  hints: readonly string[];
  caseless: boolean;
  keep: boolean;
  entropy: number | undefined;
  needsDigit: boolean;
  skipCode: boolean;
}

const COMPILED: readonly CompiledRule[] = SECRET_RULES.map((r) => {
  const bounded = r.pattern.startsWith("{B}");
  const flags = r.flags ?? "";
  return {
    id: r.id,
    re: new RegExp(bounded ? r.pattern.slice(3) : r.pattern, `g${flags}`),
    bounded,
    hints: r.hints,
    caseless: flags.includes("i"),
    keep: r.keep === true,
    entropy: r.entropy,
    needsDigit: r.needsDigit === true,
    skipCode: r.skipCode === true,
  };
});

/** A token's left boundary (secret-rules.ts, `{B}`) at `offset`. */
const ANSI_BEFORE = new RegExp(`${TOKEN_BOUNDARY}$`);
function atBoundary(text: string, offset: number): boolean {
  if (offset === 0) return true;
  const prev = text.charCodeAt(offset - 1);
  const word =
    (prev >= 48 && prev <= 57) || (prev >= 65 && prev <= 90) || (prev >= 97 && prev <= 122) || prev === 95;
  if (!word) return true;
  // Directly after an ANSI colour code (`\x1b[31m`), whose last letter is a word character.
  return ANSI_BEFORE.test(text.slice(Math.max(0, offset - 16), offset));
}

/** The ids of the rules, for documentation and tests. */
export const SECRET_RULE_IDS: readonly string[] = COMPILED.map((r) => r.id);

/** Shannon entropy of a string in bits per character. Pure. */
export function shannonEntropy(s: string): number {
  if (!s) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  const n = [...s].length;
  for (const c of counts.values()) {
    const p = c / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** A value that only names a secret: `${TOKEN}`, `$TOKEN`, `<token>`, `***`, `xxxx`. */
function isPlaceholder(v: string): boolean {
  return (
    /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(v) ||
    /^<[^>]*>?$/.test(v) ||
    /^(.)\1*$/.test(v) ||
    /^%[A-Za-z_]+%$/.test(v) ||
    v.includes(REPLACEMENT)
  );
}

/** A dotted identifier path or a camelCase name: source code, not a credential. */
function looksLikeCode(v: string): boolean {
  return /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(v) || /^[a-z]+(?:[A-Z][a-z]+)+$/.test(v);
}

/** Apply the format rules to a text. Pure. */
/** The replacement for `secret`: with `keepLines`, followed by as many newlines as it held. */
function replacement(secret: string, keepLines: boolean): string {
  if (!keepLines) return REPLACEMENT;
  let n = 0;
  for (let i = secret.indexOf("\n"); i >= 0; i = secret.indexOf("\n", i + 1)) n++;
  return REPLACEMENT + "\n".repeat(n);
}

function redactFormats(text: string, keepLines: boolean): string {
  let out = text;
  let lower: string | null = null;
  for (const rule of COMPILED) {
    if (rule.caseless && lower === null) lower = out.toLowerCase();
    const hay = rule.caseless && lower !== null ? lower : out;
    if (!rule.hints.some((h) => hay.includes(h))) continue;
    let changed = false;
    out = out.replace(rule.re, (match: string, ...groups: unknown[]) => {
      if (rule.bounded) {
        const offset = groups[groups.length - 2] as number;
        const whole = groups[groups.length - 1] as string;
        if (!atBoundary(whole, offset)) return match;
      }
      const prefix = rule.keep && typeof groups[0] === "string" ? groups[0] : "";
      const value =
        rule.entropy !== undefined && typeof groups[1] === "string" ? groups[1] : match.slice(prefix.length);
      if (rule.entropy !== undefined || rule.needsDigit || rule.skipCode) {
        if (isPlaceholder(value)) return match;
        if (rule.entropy !== undefined && shannonEntropy(value) < rule.entropy) return match;
        if (rule.needsDigit && !/\d/.test(value)) return match;
        if (rule.skipCode && looksLikeCode(value)) return match;
        // Words and simple identifiers are settings, not secrets (`token: required`).
        if (/^[a-z]+(?:[_-][a-z]+)*$/.test(value) || /^(?:true|false|null|none)$/i.test(value)) return match;
      }
      changed = true;
      return `${prefix}${replacement(value, keepLines)}${match.slice(prefix.length + value.length)}`;
    });
    if (changed) lower = null;
  }
  return out;
}

export interface RedactOptions {
  /**
   * Keep the text's line count: a multi-line secret (a PEM block) becomes `[REDACTED]` and as
   * many empty lines, so line numbers after it stay right (read_file).
   */
  keepLines?: boolean;
}

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

  /** Redact one string: live values first, then every known format. */
  redact(text: string, opts: RedactOptions = {}): string {
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
      out = out.replace(this.#liveRe, (m) => replacement(m, opts.keepLines === true));
    }
    return redactFormats(out, opts.keepLines === true);
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

/** One argument, so `lines.map(redact)` stays right. */
export function redact(text: string): string {
  return redactor.redact(text);
}

/** `redact` keeping the line count (see RedactOptions.keepLines). */
export function redactKeepingLines(text: string): string {
  return redactor.redact(text, { keepLines: true });
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
