import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createNodeMiddleware, Probot } from "probot";
import { POOL_NAMES } from "../../src/config/pools.js";
import { JobQueues } from "../../src/queue/queues.js";
import type { Logger } from "../../src/shared/logger.js";
import { drainerOctokits, Outbox, OutboxDrainer } from "../../src/status/outbox/index.js";
import {
  createTriggerDeps,
  type DecisionRecord,
  registerTriggers,
  type TriggerDeps,
} from "../../src/triggers/index.js";
import { type FakeGitHub, startFakeGitHub, TEST_APP_ID, testPrivateKey } from "../helpers/fake-github.js";
import { examplePayload, memoryLogger } from "../helpers/github.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { testSettings } from "./harness.js";

/**
 * The webhook over real HTTP: Probot's own middleware on a loopback port, with the production
 * Octokit (Probot's defaults: the write throttle and retries ON), pointed at the fake GitHub
 * (fault injection: test/helpers/fake-github.ts), real Redis under a prefix of its own. What a
 * GitHub delivery sees is the HTTP status this answers.
 */

export const SECRET = "http-test-webhook-secret-0123456789";
export const OWNER = "Codertocat";
export const REPO = "Hello-World";
export const SHA = "c0ffee".padEnd(40, "0");

export interface WebhookBed {
  url: string;
  gh: FakeGitHub;
  queues: JobQueues;
  outbox: Outbox;
  deps: TriggerDeps;
  decisions: Array<{ event: string } & DecisionRecord>;
  lines: () => Array<Record<string, unknown>>;
  /** POST one signed delivery; resolves with GitHub's view of it: the status and body. */
  post: (payload: Record<string, unknown>, opts?: { id?: string; event?: string }) => Promise<Answer>;
  jobs: () => Promise<Array<{ id: string; pool: string; data: any }>>;
  /** Start the outbox drainer (the web process runs one; off until asked, so tests see the request alone). */
  startDrainer: (rate?: { writeMs?: number; contentMs?: number }) => OutboxDrainer;
  close: () => Promise<void>;
}

export interface Answer {
  status: number;
  body: string;
}

/** A `/autofix` comment on issue `n` (real payload from @octokit/webhooks-examples). */
export function commandPayload(n: number, body = "/autofix fix the gather op"): Record<string, any> {
  const p = examplePayload("issue_comment", "created");
  p.repository.default_branch = "main";
  p.issue.number = n;
  p.comment.id = 7_000_000 + n;
  p.comment.body = `${body}\nhttps://github.com/${OWNER}/${REPO}/actions/runs/5/job/6`;
  return p;
}

let counter = 0;
export function deliveryId(label = "d"): string {
  return `${label}-${process.pid}-${++counter}`;
}

export async function webhookBed(
  opts: {
    settings?: Partial<TriggerDeps["settings"]>;
    /** Build the outbox (tests wrap it to inject Redis trouble). */
    outbox?: (redis: JobQueues["connection"], prefix: string) => Outbox;
  } = {},
): Promise<WebhookBed> {
  const gh = await startFakeGitHub();
  gh.permissions.set(OWNER, "admin");
  gh.branches.set(`${OWNER}/${REPO}:main`, SHA);
  const prefix = uniquePrefix("http");
  const queues = new JobQueues({ redis: TEST_REDIS_URL, prefix });
  await queues.queue("cpu").waitUntilReady();
  const outbox = opts.outbox?.(queues.connection, prefix) ?? new Outbox({ redis: queues.connection, prefix });
  const { log, lines } = memoryLogger();
  const deps = createTriggerDeps(
    { ...testSettings(prefix, TEST_APP_ID), ...opts.settings },
    queues,
    log,
    () => new Date(),
    outbox,
  );
  const decisions: WebhookBed["decisions"] = [];
  // The production client: Probot's ProbotOctokit with its defaults (throttle and retries on).
  const probot = new Probot({
    appId: Number(TEST_APP_ID),
    privateKey: testPrivateKey(),
    secret: SECRET,
    baseUrl: gh.url,
    log: log as Logger,
  });
  const middleware = await createNodeMiddleware(
    (app) => registerTriggers(app, deps, [(event, r) => decisions.push({ event, ...r })]),
    { probot },
  );
  const server: Server = createServer(
    (req, res) => void middleware(req, res, () => res.writeHead(404).end()),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
  const drainers: OutboxDrainer[] = [];

  const post: WebhookBed["post"] = async (payload, o = {}) => {
    const body = JSON.stringify(payload);
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": o.event ?? "issue_comment",
        "x-github-delivery": o.id ?? deliveryId(),
        "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
      },
      body,
    });
    return { status: res.status, body: await res.text() };
  };

  return {
    url,
    gh,
    queues,
    outbox,
    deps,
    decisions,
    lines,
    post,
    jobs: async () => {
      const out: Array<{ id: string; pool: string; data: any }> = [];
      for (const pool of POOL_NAMES) {
        const list = await queues.queue(pool).getJobs(["waiting", "prioritized", "active", "delayed"]);
        for (const j of list) out.push({ id: j.id!, pool, data: j.data });
      }
      return out;
    },
    startDrainer: (rate) => {
      const access = async (installationId: number) => {
        const octokit = await probot.auth(installationId);
        const token = async () =>
          (await (octokit.auth as (o: unknown) => Promise<{ token: string }>)({ type: "installation" }))
            .token;
        return { octokit, token };
      };
      const drainer = new OutboxDrainer({
        outbox,
        octokitFor: drainerOctokits(access),
        log,
        pollMs: 20,
        backoff: { baseMs: 20, maxMs: 200 },
        ...(rate ? { rate } : {}),
      });
      drainer.start();
      drainers.push(drainer);
      return drainer;
    },
    close: async () => {
      for (const d of drainers) await d.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await queues.close();
      await gh.close();
      await dropPrefix(prefix);
    },
  };
}

/** Status comments (by the marker) the fake GitHub holds for issue `n`. */
export function statusComments(gh: FakeGitHub, n: number): string[] {
  return [...gh.comments.values()]
    .filter((c) => c.issue === `${OWNER}/${REPO}#${n}` && c.body.includes("<!-- autofix:status"))
    .map((c) => c.body);
}

/** Replies (by the marker) on issue `n`. */
export function replies(gh: FakeGitHub, n: number): string[] {
  return [...gh.comments.values()]
    .filter((c) => c.issue === `${OWNER}/${REPO}#${n}` && c.body.includes("<!-- autofix:reply -->"))
    .map((c) => c.body);
}

/** GitHub writes the fake received (anything but GET, and not the token exchange). */
export function writes(gh: FakeGitHub): FakeGitHub["requests"] {
  return gh.requests.filter((r) => r.method !== "GET" && !r.path.endsWith("/access_tokens"));
}
