import { createHmac, generateKeyPairSync } from "node:crypto";
import { createRequire } from "node:module";
import { Writable } from "node:stream";
import nock from "nock";
import { type ApplicationFunction, Probot, ProbotOctokit } from "probot";
import { createLogger, type Logger } from "../../src/shared/logger.js";

const require = createRequire(import.meta.url);

export const TEST_PRIVATE_KEY = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();
export const TEST_WEBHOOK_SECRET = "test-webhook-secret-0123456789";
export const INSTALLATION_ID = 42;
export const API = "https://api.github.com";

/** A logger that keeps its lines for assertions instead of printing them. */
export function memoryLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _e, cb) {
      raw.push(String(chunk));
      cb();
    },
  });
  return {
    log: createLogger({ destination: stream, level: "debug" }),
    lines: () => raw.map((l) => JSON.parse(l)),
  };
}

/** A Probot with retries and throttling off, so nock sees each request exactly once. */
export function testProbot(log: Logger): Probot {
  return new Probot({
    appId: 1,
    privateKey: TEST_PRIVATE_KEY,
    secret: TEST_WEBHOOK_SECRET,
    log,
    Octokit: ProbotOctokit.defaults((instanceOptions: Record<string, unknown>) => ({
      ...instanceOptions,
      retry: { enabled: false },
      throttle: { enabled: false },
    })),
  });
}

export async function loadApp(probot: Probot, appFn: ApplicationFunction): Promise<void> {
  await probot.load(appFn, { cwd: process.cwd(), addHandler: () => {} });
}

type Example = { name: string; examples: Array<Record<string, any>> };
const EXAMPLES: Example[] = require("@octokit/webhooks-examples/api.github.com/index.json");

/**
 * A real payload from @octokit/webhooks-examples (deep-copied), with an installation added
 * and the repository normalized to owner/repo so nock scopes stay short.
 */
export function examplePayload(event: string, action: string, index = 0): Record<string, any> {
  const list = EXAMPLES.find((e) => e.name === event)?.examples.filter((x) => x.action === action) ?? [];
  const found = list[index];
  if (!found) throw new Error(`no example for ${event}.${action}[${index}]`);
  const payload = structuredClone(found);
  payload.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI=" };
  return payload;
}

/** nock the installation token exchange (any number of times). */
export function nockInstallationToken(): nock.Scope {
  return nock(API).persist().post(`/app/installations/${INSTALLATION_ID}/access_tokens`).reply(201, {
    token: "ghs_testinstallationtoken0000000000000000",
    expires_at: "2099-01-01T00:00:00Z",
    permissions: {},
  });
}

/** nock `.github/autofix.yml` in the repo (and the org `.github` fallback Probot also reads). */
export function nockRepoConfig(owner: string, repo: string, yaml: string | null): void {
  const path = "/contents/.github%2Fautofix.yml";
  if (yaml === null) {
    nock(API).get(`/repos/${owner}/${repo}${path}`).reply(404, { message: "Not Found" });
    nock(API).get(`/repos/${owner}/.github${path}`).reply(404, { message: "Not Found" });
  } else {
    nock(API)
      .get(`/repos/${owner}/${repo}${path}`)
      // Probot asks for the raw media type and gets the file text back.
      .reply(200, yaml, { "content-type": "text/plain; charset=utf-8" });
  }
}

export function nockPermission(owner: string, repo: string, user: string, role: string | number): void {
  const scope = nock(API).get(`/repos/${owner}/${repo}/collaborators/${user}/permission`);
  if (typeof role === "number") scope.reply(role, { message: "boom" });
  else {
    const permission = role === "maintain" ? "write" : role === "triage" ? "read" : role;
    scope.reply(200, { permission, role_name: role, user: { login: user } });
  }
}

/** Sign a webhook body the way GitHub does. */
export function sign(body: string, secret = TEST_WEBHOOK_SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}
