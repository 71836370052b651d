import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Redactor, registerEnvSecrets } from "../../src/shared/redact.js";

/** Deterministic random alphanumerics (mulberry32; integer-exact, unlike a float LCG). */
const alnum = (n: number, seed = 7) => {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = Math.imul(x ^ (x >>> 15), x | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    s += chars[((t ^ (t >>> 14)) >>> 0) % chars.length];
  }
  return s;
};

const pem = generateKeyPairSync("rsa", { modulusLength: 1024 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();
const pkcs8 = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();

/** Real-format secrets: each must disappear entirely. */
const SECRETS: Record<string, string> = {
  "classic PAT": `ghp_${alnum(36)}`,
  "OAuth token": `gho_${alnum(36, 3)}`,
  "user-to-server": `ghu_${alnum(36, 4)}`,
  "refresh token": `ghr_${alnum(76, 5)}`,
  "installation token (classic length)": `ghs_${alnum(36, 6)}`,
  "installation token (long format)": `ghs_${alnum(300, 8)}`,
  "fine-grained PAT": `github_pat_${alnum(22, 9)}_${alnum(59, 10)}`,
  "Anthropic API key": `sk-ant-api03-${alnum(86, 11)}-${alnum(6, 12)}AA`,
  "Anthropic admin key": `sk-ant-admin01-${alnum(80, 13)}`,
  "RSA private key (PKCS#1)": pem,
  "EC private key (PKCS#8)": pkcs8,
};

/** Look-alikes that must stay untouched. */
const LOOKALIKES = [
  "ghp_short",
  "the ghs_ prefix is used by installation tokens",
  "sha 3f786850e387550fdab836ed7e6dc881de23001b",
  "github_pat_ is the fine-grained prefix",
  "sk-ant-api03-too-short",
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
  "https://github.com/tenstorrent/tt-metal/actions/runs/12345/job/678",
  "TT_THROW @ tt_metal/impl/device.cpp:123: TIMEOUT: device timeout",
  `uuid ${"a".repeat(8)}-${"b".repeat(4)}-4${"c".repeat(3)}-8${"d".repeat(3)}-${"e".repeat(12)}`,
  `ghx_${alnum(36)}`,
];

describe("redactor", () => {
  const r = new Redactor();

  for (const [name, secret] of Object.entries(SECRETS)) {
    it(`removes a ${name} from surrounding text`, () => {
      const text = `before ${secret} after`;
      const out = r.redact(text);
      expect(out).not.toContain(secret);
      // No fragment long enough to be useful survives.
      expect(out).not.toMatch(/[A-Za-z0-9]{30,}/);
      expect(out).toContain("before");
      expect(out).toContain("after");
      expect(out).toContain("[REDACTED]");
    });
  }

  for (const text of LOOKALIKES) {
    it(`leaves a look-alike untouched: ${text.slice(0, 40)}`, () => {
      expect(r.redact(text)).toBe(text);
    });
  }

  it("removes credentials embedded in URLs but keeps the host", () => {
    const out = r.redact("remote: https://x-access-token:abc123secretvalue@github.com/o/r.git");
    expect(out).toBe("remote: https://x-access-token:[REDACTED]@github.com/o/r.git");
  });

  it("removes authorization header values", () => {
    expect(r.redact("authorization: token abcdef123456")).toBe("authorization: token [REDACTED]");
  });

  it("removes live secret values of any shape, including a key with escaped newlines", () => {
    const live = new Redactor();
    live.addSecret("hunter2-but-longer");
    live.addSecret(pem);
    expect(live.redact("pw=hunter2-but-longer;")).toBe("pw=[REDACTED];");
    const escaped = pem.replace(/\n/g, "\\n");
    expect(live.redact(`PRIVATE_KEY="${escaped}"`)).not.toContain("MII");
  });

  it("ignores live values too short to be secrets (Probot's 'development' would blank out words)", () => {
    const live = new Redactor();
    live.addSecret("dev");
    expect(live.redact("development dev")).toBe("development dev");
  });

  it("registers secrets from the environment by name, and the password inside REDIS_URL", () => {
    const live = new Redactor();
    registerEnvSecrets(
      {
        WEBHOOK_SECRET: "whsec-1234567890",
        REDIS_URL: "redis://:p%40ssword-123@host:6379",
        APP_ID: "12345678",
      },
      live,
    );
    expect(live.redact("whsec-1234567890 p@ssword-123 12345678")).toBe("[REDACTED] [REDACTED] 12345678");
  });

  it("redacts nested values and errors for structured logs", () => {
    const token = SECRETS["installation token (long format)"]!;
    const out = r.redactDeep({ a: [{ b: `x ${token}` }], err: new Error(`bad ${token}`) });
    expect(JSON.stringify(out)).not.toContain(token);
    expect((out.err as Error).message).toBe("bad [REDACTED]");
  });
});
