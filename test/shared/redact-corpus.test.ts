import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Redactor } from "../../src/shared/redact.js";

/**
 * The redactor's corpus: realistic fake secrets of many providers, in the contexts they show up
 * in (logs with colour codes, JSON, shell commands, URLs), and look-alikes that must survive.
 * Prints recall and false positives; recall must stay at or above 95% and no look-alike may
 * change. CORPUS_SEED=<n> draws other random values (default 42).
 */

/** Deterministic pseudo-random strings (mulberry32): the same corpus on every run. */
function gen(seed: number) {
  let x = seed >>> 0;
  const next = () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n: number, alphabet: string) => {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(next() * alphabet.length)];
    return s;
  };
}
const r = gen(Number(process.env.CORPUS_SEED ?? 42));
const AN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX = "0123456789abcdef";
const URLSAFE = `${AN}_-`;
const B64 = `${AN}+/`;
const an = (n: number) => r(n, AN);
const hex = (n: number) => r(n, HEX);
const b64url = (n: number) => r(n, URLSAFE);

const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const jwtPart = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = `${jwtPart({ alg: "HS256", typ: "JWT" })}.${jwtPart({ sub: "1234567890", name: "ci", iat: 1516239022 })}.${b64url(43)}`;

interface Case {
  provider: string;
  /** The text as it appears in output. */
  text: string;
  /** The secret part: none of it may survive. */
  secret: string;
}

/** A case: the secret, and how it reads in context (`$` stands for the secret). */
const c = (provider: string, secret: string, context = "value: $ end"): Case => ({
  provider,
  text: context.replace("$", () => secret),
  secret,
});

const ghs = `ghs_${an(36)}`;
const ghsLong = `ghs_${an(40)}.${b64url(60)}_${an(30)}`;
const slackBot = `xoxb-${r(12, "0123456789")}-${r(13, "0123456789")}-${an(24)}`;
const SECRETS: Case[] = [
  c("GitHub classic PAT", `ghp_${an(36)}`),
  c("GitHub OAuth token", `gho_${an(36)}`),
  c("GitHub user-to-server token", `ghu_${an(36)}`),
  c("GitHub installation token", ghs),
  c("GitHub installation token (long format with . and _)", ghsLong),
  c("GitHub refresh token", `ghr_${an(76)}`),
  c("GitHub fine-grained PAT", `github_pat_${an(22)}_${an(59)}`),
  c("GitHub token after an ANSI colour code", `ghs_${an(36)}`, "\x1b[31m$\x1b[0m"),
  c("GitLab PAT", `glpat-${b64url(20)}`),
  c("GitLab deploy token", `gldt-${b64url(20)}`),
  c("GitLab runner token", `glrt-${b64url(20)}`),
  c("Slack bot token", slackBot),
  c(
    "Slack user token",
    `xoxp-${r(12, "0123456789")}-${r(12, "0123456789")}-${r(13, "0123456789")}-${hex(32)}`,
  ),
  c("Slack app token", `xapp-1-A${r(10, UP)}-${r(13, "0123456789")}-${hex(64)}`),
  c("Slack webhook", `https://hooks.slack.com/services/T${r(8, UP)}/B${r(10, UP)}/${an(24)}`, "posting to $"),
  c("Stripe live secret key", `sk_live_${an(99).slice(0, 24)}`),
  c("Stripe restricted key", `rk_live_${an(24)}`),
  c("Stripe test key", `sk_test_${an(24)}`),
  c("Stripe webhook secret", `whsec_${an(32)}`),
  c("Google API key", `AIza${b64url(35)}`),
  c("Google OAuth client secret", `GOCSPX-${b64url(28)}`),
  c("OpenAI project key", `sk-proj-${b64url(64)}`),
  c("OpenAI legacy key", `sk-${an(20)}T3BlbkFJ${an(20)}`),
  c("OpenAI service-account key", `sk-svcacct-${b64url(64)}`),
  c("Anthropic API key", `sk-ant-api03-${b64url(93)}AA`),
  c("Anthropic admin key", `sk-ant-admin01-${b64url(80)}`),
  c("npm token", `npm_${an(36)}`),
  c("npm token in .npmrc", `npm_${an(36)}`, "//registry.npmjs.org/:_authToken=$"),
  c("PyPI token", `pypi-AgEIcHlwaS5vcmc${b64url(70)}`),
  c("Twilio API key", `SK${hex(32)}`),
  c("SendGrid API key", `SG.${b64url(22)}.${b64url(43)}`),
  c("Mailgun key", `key-${hex(32)}`),
  c("AWS access key id", `AKIA${r(16, UP)}`),
  c("AWS temporary access key id", `ASIA${r(16, UP)}`),
  c("AWS secret access key", r(40, B64), "aws_secret_access_key = $"),
  c(
    "Azure storage key",
    `${r(86, B64)}==`,
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=$;EndpointSuffix=core.windows.net",
  ),
  c("DigitalOcean token", `dop_v1_${hex(64)}`),
  c("Hugging Face token", `hf_${r(34, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")}`),
  c("Docker Hub PAT", `dckr_pat_${b64url(27)}`),
  c("Shopify access token", `shpat_${hex(32)}`),
  c("Databricks token", `dapi${hex(32)}`),
  c("Vault token", `hvs.${b64url(90)}`),
  c("Telegram bot token", `${r(10, "0123456789")}:AA${b64url(33)}`),
  c("Discord webhook", b64url(68), "https://discord.com/api/webhooks/123456789012345678/$"),
  c("JWT", jwt),
  c("RSA private key (PKCS#1)", rsa),
  c("EC private key (PKCS#8)", ec),
  c("private key cut by clipping (no END line)", rsa.slice(0, 400), "[... 12 bytes cut ...]\n$"),
  c("private key with literal \\n escapes", JSON.stringify(rsa).slice(1, -1), '{"private_key": "$"}'),
  c("password assignment", "Xk9#vLq2!pR7", "DB_PASSWORD=$"),
  c("secret in YAML", r(32, AN), "  client_secret: $"),
  c("api_key in JSON", r(32, AN), '{"api_key": "$"}'),
  c("JSON-quoted Authorization header", b64url(40), '{"headers": {"Authorization": "Bearer $"}}'),
  c("Authorization header in a log", an(40), "> Authorization: token $"),
  c("curl -u user:password", "s3cr3t-Pa55w0rd", "curl -sf -u deploy:$ https://artifacts.example.com/x"),
  c("URL with credentials", "Tr0ub4dor-and-3", "git clone https://ci-bot:$@git.example.com/o/r.git"),
  c("URL with an empty user", an(40), "remote: https://:$@github.example.com/o/r.git"),
  c(
    "GitLab private-token header",
    b64url(20),
    'curl -H "PRIVATE-TOKEN: $" https://gitlab.example.com/api/v4/projects',
  ),
];

const dataUri = `data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk${r(120, B64)}AAAABJRU5ErkJggg==`;
const LOOKALIKES: string[] = [
  "commit 3f786850e387550fdab836ed7e6dc881de23001b",
  "HEAD is now at 3f78685 Fix the gather timeout",
  `merge base ${hex(40)}`,
  `tree ${hex(40)}`,
  `uuid 123e4567-e89b-12d3-a456-426614174000`,
  `request-id: ${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
  "FAILED tests/test_auth.py::test_token_refresh[expired-ghp_]",
  "tests/unit/test_secret_store.py::TestVault::test_rotate_api_key PASSED",
  "tests/test_ops.py::test_matmul[dtype=bfloat16-shape=(32, 1024)] - AssertionError",
  `<img src="${dataUri}">`,
  `![chart](${dataUri})`,
  `sha256:${hex(64)}`,
  `sha512 ${hex(128)}`,
  `${hex(64)}  tt-metal-0.52.0.tar.gz`,
  "integrity sha512-Lyd/aF0B+s4d3QEStF4ruvbQ/aGJ8a01ZONxkF4VqvvRRYKPmnz8QxXJm9DZABlvz5UiHQSwH+0vSoyONB2sow==",
  "github.com/stretchr/testify v1.9.0 h1:HtqpIVDClZ4nwg75+f6Lvsy/wHu+3BoSGCbBAcpTsTg=",
  "--hash=sha256:2b9ffe3d6e8ffe2ba5e41a0d0cd1d3ae4b1c7a8e3cd3c0a3e1e0b0b3c9e2f1a0",
  "main.3f9a8b7c1d2e4f50.js  1.2 MiB  [emitted] [immutable]",
  "version 1.2.3-rc.1+build.20261124.5",
  "Python 3.12.7 (main, Oct  1 2026, 08:12:34) [GCC 13.2.0]",
  "pip 24.3.1 from /usr/lib/python3/dist-packages/pip (python 3.12)",
  "docker pull ghcr.io/tenstorrent/tt-metal/ubuntu-22.04-dev@sha256:0c7d1e8f7b3a5c9e2d4f6a8b0c1e3f5a7b9d1f3e5a7c9e1b3d5f7a9c1e3b5d7f",
  "pod api-7d9f8b6c5d-x2k4q is Running",
  "https://github.com/tenstorrent/tt-metal/actions/runs/12345678901/job/34567890123",
  "git@github.com:tenstorrent/tt-metal.git",
  "postgres://localhost:5432/autofix_test",
  "http://user@proxy.example.com:3128/",
  "\x1b[31mFAILED\x1b[0m tests/test_gather.py::test_gather_timeout \x1b[1m[100%]\x1b[0m",
  "\x1b[32mghp_ prefixes are classic personal access tokens\x1b[0m",
  "password: required",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell placeholder
  "token=${GITHUB_TOKEN}",
  'secret: "<your webhook secret>"',
  "api_key: ********",
  "Authorization: Bearer [REDACTED]",
  "the authorization header was missing",
  "max_tokens: 4096",
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEx1S5qgT4J0aZ4lYq1J3n9TbT9yA==\n-----END PUBLIC KEY-----",
  "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUXKc4=\n-----END CERTIFICATE-----",
  `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${r(43, B64)} ci@runner`,
  "AKIAEXAMPLE is not a full key",
  "eyJhbGciOiJIUzI1NiJ9 (header only)",
  "scikit-learn==1.5.2 sk-video==1.1.10",
  "xoxo from the test fixture",
  "github_pat_ is the fine-grained prefix",
  "TT_THROW @ tt_metal/impl/device.cpp:123: TIMEOUT: device timeout",
  "elapsed 00:12:34.567890 on n150-04",
  "private_key_path=/etc/autofix/app.pem",
  "secret_name=prod-db-password",
  'password = os.environ["DB_PASSWORD"]',
  "token = tokenizer.encode(text)",
  "api_key = settings.api_key",
  "secret_key = get_secret_key(1)",
  "self.token = token_from_env()",
  "if (password === confirmPassword) return;",
  'authorization = request.headers.get("Authorization")',
  "headers['x-api-key'] = config.apiKey",
];

describe("redactor corpus", () => {
  const redactor = new Redactor();

  it("reports recall and false positives; recall >= 95%, no false positive", () => {
    const missed: string[] = [];
    for (const s of SECRETS) {
      const out = redactor.redact(s.text);
      // The secret is gone, and so is any long fragment of it.
      const fragment = s.secret.length > 24 ? s.secret.slice(s.secret.length - 16) : s.secret;
      const middle = s.secret.length > 48 ? s.secret.slice(20, 40) : s.secret;
      if (
        out.includes(s.secret) ||
        out.includes(fragment) ||
        out.includes(middle) ||
        !out.includes("[REDACTED]")
      )
        missed.push(`${s.provider}: ${JSON.stringify(out.slice(0, 120))}`);
    }
    const falsePositives = LOOKALIKES.filter((t) => redactor.redact(t) !== t);
    const providers = new Set(SECRETS.map((s) => s.provider.split(" ")[0]));
    const recall = (SECRETS.length - missed.length) / SECRETS.length;
    console.log(
      [
        "redactor corpus",
        `  secrets:         ${SECRETS.length} (${providers.size} providers/kinds)`,
        `  redacted:        ${SECRETS.length - missed.length}`,
        `  recall:          ${(recall * 100).toFixed(1)}%`,
        `  look-alikes:     ${LOOKALIKES.length}`,
        `  false positives: ${falsePositives.length}`,
        ...missed.map((m) => `  missed: ${m}`),
        ...falsePositives.map((f) => `  false positive: ${JSON.stringify(f.slice(0, 80))}`),
      ].join("\n"),
    );
    expect(providers.size).toBeGreaterThanOrEqual(10);
    expect(LOOKALIKES.length).toBeGreaterThanOrEqual(30);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    expect(falsePositives).toEqual([]);
  });

  it("keeps the context around a secret", () => {
    expect(redactor.redact(`\x1b[31m${ghs}\x1b[0m`)).toBe("\x1b[31m[REDACTED]\x1b[0m");
    expect(redactor.redact(`{"Authorization": "Bearer ${an(40)}"}`)).toBe(
      '{"Authorization": "Bearer [REDACTED]"}',
    );
    expect(redactor.redact("curl -u deploy:s3cr3t-Pa55w0rd https://x")).toBe(
      "curl -u deploy:[REDACTED] https://x",
    );
    expect(redactor.redact("https://:abcdefgh12345678@host/x")).toBe("https://:[REDACTED]@host/x");
    expect(redactor.redact(`token ${ghsLong}.`)).toBe("token [REDACTED].");
  });

  it("redacts a private key from its BEGIN line to the end of a clipped text", () => {
    const clipped = `before\n${rsa.slice(0, 300)}`;
    const out = redactor.redact(clipped);
    expect(out).toBe("before\n[REDACTED]");
  });

  it("can keep the line count, so line numbers after a key stay right", () => {
    const text = `line 1\n${rsa}line after`;
    const out = redactor.redact(text, { keepLines: true });
    expect(out.split("\n")).toHaveLength(text.split("\n").length);
    expect(out.split("\n")[1]).toBe("[REDACTED]");
    expect(out.endsWith("\nline after")).toBe(true);
  });

  it("redacts every provider inside one long log", () => {
    const log = SECRETS.map((s) => s.text).join("\n");
    const out = redactor.redact(log);
    for (const s of SECRETS) expect(out).not.toContain(s.secret);
  });
});
