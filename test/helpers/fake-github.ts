import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small GitHub API on loopback for worker and end-to-end tests: installation tokens, issue
 * comments, reactions, permissions, branches, issues, pull requests, Actions jobs with logs
 * (served behind a redirect, as GitHub does) and check-run annotations. Real HTTP, so the
 * production Probot/Octokit clients talk to it (also from a child process). Paths under
 * /api/v3 work too, so it can stand in for GitHub Enterprise Server.
 */

export interface FakeComment {
  id: number;
  issue: string;
  body: string;
  edits: string[];
}

export interface FakePull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  draft: boolean;
  updates: number;
}

export interface FakeActionsJob {
  id: number;
  runId: number;
  name: string;
  conclusion: string;
  labels: string[];
  log: string;
  annotations: string[];
  failedStep?: string;
  /** Defaults: tt-runner-1, attempt 1, no times. */
  runnerName?: string;
  runAttempt?: number;
  startedAt?: string;
  completedAt?: string;
}

/**
 * A fault the fake plays instead of (or before) its real answer, for the requests it matches:
 * an error status, a stall (no answer until the server closes), or a late answer.
 */
export interface FakeFault {
  /** HTTP method to match (any when unset). */
  method?: string;
  /** Matched against the path without a leading /api/v3 (a string must be equal). */
  path: RegExp | string;
  /** How many matching requests it applies to (every one when unset). */
  times?: number;
  /** Answer with this status (a JSON message body) instead of the route's answer. */
  status?: number;
  /** Extra response headers with `status` (retry-after, x-ratelimit-remaining). */
  headers?: Record<string, string>;
  /** Never answer: the request hangs until the client gives up or the server closes. */
  stall?: boolean;
  /** Answer late: hold the request this many milliseconds, then answer as usual (or `status`). */
  delayMs?: number;
  /**
   * With `status`: the route runs first (a PR is created, a comment posted) and only its answer
   * is replaced, as when a proxy answers 502 for a request GitHub carried out.
   */
  after?: boolean;
}

/** One request the fake received, in arrival order. */
export interface FakeRequest {
  seq: number;
  method: string;
  path: string;
  /** The fault that was played, if one matched. */
  fault?: "status" | "stall" | "delay";
  /** When it arrived, by the clock given to startFakeGitHub (Date.now by default). */
  at: number;
}

export interface FakeGitHubOptions {
  /** The clock requests are stamped with: tests with a fake clock pass theirs. */
  now?: () => number;
}

export interface FakeGitHub {
  url: string;
  /** Add a fault; the newest matching fault wins. */
  fault(f: FakeFault): void;
  clearFaults(): void;
  /** Every request received, in arrival order (faulted ones too). */
  requests: FakeRequest[];
  /** Requests held by a stall fault right now. */
  stalled(): number;
  comments: Map<number, FakeComment>;
  tokens: string[];
  /** Roles by login for the collaborator-permission API (default: none). */
  permissions: Map<string, string>;
  /** Branch tips by `owner/repo:branch`. */
  branches: Map<string, string>;
  /** Repository files by `owner/repo:path` (the contents API answers the raw text; others 404). */
  files: Map<string, string>;
  pulls: FakePull[];
  issues: Array<{ number: number; title: string; body: string; labels: string[]; state: string }>;
  reactions: Array<{ commentId: number; content: string }>;
  /** What `GET /search/issues` finds (every query in the repository gets these); the queries asked, in order. */
  search: {
    items: Array<{
      number: number;
      title: string;
      body?: string;
      user: { login: string; type: string };
      pull_request?: unknown;
    }>;
    queries: string[];
  };
  /** Actions jobs by id; listed per run attempt under `runId/attempt`. */
  jobs: Map<number, FakeActionsJob>;
  attempts: Map<string, number[]>;
  /** Every comment body written, in order, per target `owner/repo#n`. */
  history(target: string): string[];
  latest(target: string): string | undefined;
  close(): Promise<void>;
}

export const TEST_APP_ID = "12345";

let cachedKey: string | undefined;
/** An RSA private key for signing the app's JWT (generated once per test process). */
export function testPrivateKey(): string {
  cachedKey ??= generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  }).privateKey;
  return cachedKey;
}

/** Request bodies read ahead of a late answer (a client that gave up meanwhile still gets its write done). */
const readAhead = new WeakMap<IncomingMessage, string>();

async function rawBody(req: IncomingMessage): Promise<string> {
  const ahead = readAhead.get(req);
  if (ahead !== undefined) return ahead;
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await rawBody(req);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function startFakeGitHub(opts: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const clock = opts.now ?? Date.now;
  let portRef = 0;
  const base = () => `http://127.0.0.1:${portRef}`;
  const jobJson = (key: string, j: FakeActionsJob) => ({
    id: j.id,
    run_id: j.runId,
    name: j.name,
    status: "completed",
    conclusion: j.conclusion,
    labels: j.labels,
    runner_name: j.runnerName ?? "tt-runner-1",
    run_attempt: j.runAttempt ?? 1,
    ...(j.startedAt ? { started_at: j.startedAt } : {}),
    ...(j.completedAt ? { completed_at: j.completedAt } : {}),
    head_sha: "0".repeat(40),
    html_url: `${base()}/${key}/actions/runs/${j.runId}/job/${j.id}`,
    steps: [
      { name: "Set up job", status: "completed", conclusion: "success", number: 1 },
      { name: j.failedStep ?? "Run tests", status: "completed", conclusion: j.conclusion, number: 2 },
    ],
  });
  const comments = new Map<number, FakeComment>();
  const log: { target: string; body: string }[] = [];
  const tokens: string[] = [];
  const permissions = new Map<string, string>();
  const branches = new Map<string, string>();
  const files = new Map<string, string>();
  const pulls: FakePull[] = [];
  const issues: FakeGitHub["issues"] = [];
  const reactions: FakeGitHub["reactions"] = [];
  const search: FakeGitHub["search"] = { items: [], queries: [] };
  const jobs = new Map<number, FakeActionsJob>();
  const attempts = new Map<string, number[]>();
  let nextId = 1000;
  let nextNumber = 100;
  const faults: Array<FakeFault & { used: number }> = [];
  const requests: FakeRequest[] = [];
  let stalledNow = 0;
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    let answerInstead: FakeFault | undefined;
    const send = (status: number, data: unknown) => {
      if (answerInstead?.status) {
        res.writeHead(answerInstead.status, { "content-type": "application/json", ...answerInstead.headers });
        return res.end(
          JSON.stringify({ message: `fake GitHub fault after the request: ${answerInstead.status}` }),
        );
      }
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(data));
    };
    const path = url.pathname.replace(/^\/api\/v3/, "");
    const entry: FakeRequest = { seq: requests.length + 1, method: req.method ?? "GET", path, at: clock() };
    requests.push(entry);
    const fault = [...faults]
      .reverse()
      .find(
        (f) =>
          (f.times === undefined || f.used < f.times) &&
          (!f.method || f.method.toUpperCase() === req.method) &&
          (typeof f.path === "string" ? f.path === path : f.path.test(path)),
      );
    if (fault) {
      fault.used++;
      if (fault.stall) {
        entry.fault = "stall";
        stalledNow++;
        res.on("close", () => stalledNow--);
        return;
      }
      if (fault.delayMs) {
        entry.fault = "delay";
        // Like GitHub, the write happens even if the client stops waiting for the answer.
        readAhead.set(req, await rawBody(req));
        await new Promise((r) => setTimeout(r, fault.delayMs));
      }
      if (fault.status && fault.after) {
        entry.fault = "status";
        answerInstead = fault;
      } else if (fault.status) {
        entry.fault = "status";
        res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
        return res.end(JSON.stringify({ message: `fake GitHub fault: ${fault.status}` }));
      }
    }
    const tokenMatch = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    const issueMatch = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path);
    const commentMatch = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(path);
    if (req.method === "POST" && tokenMatch) {
      const token = `ghs_${randomBytes(24).toString("hex")}`;
      tokens.push(token);
      return send(201, {
        token,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        permissions: { issues: "write", contents: "write" },
        repository_selection: "all",
      });
    }
    if (issueMatch) {
      const m = issueMatch;
      const issue = `${m[1]}/${m[2]}#${m[3]}`;
      if (req.method === "GET") {
        const list = [...comments.values()]
          .filter((c) => c.issue === issue)
          .map((c) => ({
            id: c.id,
            body: c.body,
            user: { login: "autofix[bot]", type: "Bot" },
            performed_via_github_app: { id: 1 },
          }));
        return send(200, list);
      }
      if (req.method === "POST") {
        const b = await body(req);
        const c: FakeComment = { id: nextId++, issue, body: String(b.body), edits: [String(b.body)] };
        comments.set(c.id, c);
        log.push({ target: issue, body: c.body });
        return send(201, { id: c.id, body: c.body });
      }
    }
    if (req.method === "DELETE" && commentMatch) {
      const c = comments.get(Number(commentMatch[3]));
      if (!c || c.issue.includes("@")) return send(404, { message: "Not Found" });
      comments.delete(c.id);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === "PATCH" && commentMatch) {
      const c = comments.get(Number(commentMatch[3]));
      if (!c || c.issue.includes("@")) return send(404, { message: "Not Found" });
      const b = await body(req);
      c.body = String(b.body);
      c.edits.push(c.body);
      log.push({ target: c.issue, body: c.body });
      return send(200, { id: c.id, body: c.body });
    }
    if (req.method === "GET" && path === "/search/issues") {
      const q = url.searchParams.get("q") ?? "";
      search.queries.push(q);
      const repoQ = /repo:(\S+)/.exec(q)?.[1];
      const items = search.items.map((i) => ({
        ...i,
        html_url: `https://github.com/${repoQ}/${i.pull_request ? "pull" : "issues"}/${i.number}`,
      }));
      return send(200, { total_count: items.length, incomplete_results: false, items });
    }
    const repoMatch = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    if (repoMatch) {
      const [, owner, repo, rest = ""] = repoMatch;
      const key = `${owner}/${repo}`;
      let m: RegExpExecArray | null;
      // Commit comments (the status of a push-triggered job), kept with the issue comments
      // under the target `owner/repo@sha`.
      m = /^\/commits\/([0-9a-f]{7,40})\/comments$/.exec(rest);
      if (m) {
        const commit = `${key}@${m[1]}`;
        if (req.method === "GET") {
          const list = [...comments.values()]
            .filter((c) => c.issue === commit)
            .map((c) => ({
              id: c.id,
              body: c.body,
              user: { login: "autofix[bot]", type: "Bot" },
              performed_via_github_app: { id: 1 },
            }));
          return send(200, list);
        }
        if (req.method === "POST") {
          const b = await body(req);
          const c: FakeComment = {
            id: nextId++,
            issue: commit,
            body: String(b.body),
            edits: [String(b.body)],
          };
          comments.set(c.id, c);
          log.push({ target: commit, body: c.body });
          return send(201, { id: c.id, body: c.body });
        }
      }
      m = /^\/comments\/(\d+)$/.exec(rest);
      if (m && (req.method === "PATCH" || req.method === "DELETE")) {
        const c = comments.get(Number(m[1]));
        if (!c?.issue.includes("@")) return send(404, { message: "Not Found" });
        if (req.method === "DELETE") {
          comments.delete(c.id);
          res.writeHead(204);
          return res.end();
        }
        const b = await body(req);
        c.body = String(b.body);
        c.edits.push(c.body);
        log.push({ target: c.issue, body: c.body });
        return send(200, { id: c.id, body: c.body });
      }
      if (req.method === "GET" && rest.startsWith("/contents/")) {
        const text = files.get(`${key}:${decodeURIComponent(rest.slice("/contents/".length))}`);
        if (text === undefined) return send(404, { message: "Not Found" });
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        return res.end(text);
      }
      m = req.method === "GET" ? /^\/collaborators\/([^/]+)\/permission$/.exec(rest) : null;
      if (m) {
        const role = permissions.get(m[1]!) ?? "none";
        return send(200, { permission: role === "maintain" ? "write" : role, role_name: role });
      }
      m = req.method === "POST" ? /^\/issues\/comments\/(\d+)\/reactions$/.exec(rest) : null;
      if (m) {
        const b = await body(req);
        reactions.push({ commentId: Number(m[1]), content: String(b.content) });
        return send(201, { id: reactions.length });
      }
      m = req.method === "GET" ? /^\/branches\/(.+)$/.exec(rest) : null;
      if (m) {
        const sha = branches.get(`${key}:${decodeURIComponent(m[1]!)}`);
        return sha ? send(200, { name: m[1], commit: { sha } }) : send(404, { message: "Branch not found" });
      }
      if (rest === "/pulls" && req.method === "GET") {
        const head = url.searchParams.get("head")?.split(":")[1];
        return send(
          200,
          pulls
            .filter((p) => !head || p.head === head)
            .map((p) => ({
              number: p.number,
              html_url: `https://github.com/${key}/pull/${p.number}`,
              head: { ref: p.head },
            })),
        );
      }
      if (rest === "/pulls" && req.method === "POST") {
        const b = await body(req);
        // As GitHub: one open PR per head branch; a second create (a retry) is refused.
        if (pulls.some((x) => x.head === String(b.head)))
          return send(422, {
            message: "Validation Failed",
            errors: [
              { message: `A pull request already exists for ${key.split("/")[0]}:${String(b.head)}.` },
            ],
          });
        const p: FakePull = {
          number: nextNumber++,
          head: String(b.head),
          base: String(b.base),
          title: String(b.title),
          body: String(b.body),
          draft: b.draft === true,
          updates: 0,
        };
        pulls.push(p);
        return send(201, { number: p.number, html_url: `https://github.com/${key}/pull/${p.number}` });
      }
      m = req.method === "PATCH" ? /^\/pulls\/(\d+)$/.exec(rest) : null;
      if (m) {
        const p = pulls.find((x) => x.number === Number(m![1]));
        if (!p) return send(404, { message: "Not Found" });
        const b = await body(req);
        if (b.title) p.title = String(b.title);
        if (b.body) p.body = String(b.body);
        p.updates++;
        return send(200, { number: p.number });
      }
      if (rest === "/issues" && req.method === "GET") {
        const label = url.searchParams.get("labels");
        return send(
          200,
          issues.filter((i) => !label || i.labels.includes(label)),
        );
      }
      if (rest === "/issues" && req.method === "POST") {
        const b = await body(req);
        const i = {
          number: nextNumber++,
          title: String(b.title),
          body: String(b.body),
          labels: (b.labels as string[]) ?? [],
          state: "open",
        };
        issues.push(i);
        return send(201, i);
      }
      m = /^\/issues\/(\d+)$/.exec(rest);
      if (m) {
        const i = issues.find((x) => x.number === Number(m![1]));
        if (!i) return send(404, { message: "Not Found" });
        if (req.method === "PATCH") Object.assign(i, await body(req));
        return send(200, i);
      }
      m = req.method === "GET" ? /^\/actions\/runs\/(\d+)\/attempts\/(\d+)\/jobs$/.exec(rest) : null;
      if (m) {
        const list = (attempts.get(`${m[1]}/${m[2]}`) ?? [])
          .map((id) => jobs.get(id)!)
          .map((j) => jobJson(key, j));
        return send(200, { total_count: list.length, jobs: list });
      }
      m = req.method === "GET" ? /^\/actions\/runs\/(\d+)$/.exec(rest) : null;
      if (m) {
        // A run's latest attempt: the highest attempt listed under `attempts`.
        const runId = m[1];
        const listed = [...attempts.keys()]
          .filter((k) => k.startsWith(`${runId}/`))
          .map((k) => Number(k.split("/")[1]));
        if (listed.length === 0) return send(404, { message: "Not Found" });
        return send(200, {
          id: Number(runId),
          run_attempt: Math.max(...listed),
          html_url: `${base()}/${key}/actions/runs/${runId}`,
        });
      }
      m = req.method === "GET" ? /^\/actions\/jobs\/(\d+)$/.exec(rest) : null;
      if (m) {
        const j = jobs.get(Number(m[1]));
        return j ? send(200, jobJson(key, j)) : send(404, { message: "Not Found" });
      }
      m = req.method === "GET" ? /^\/actions\/jobs\/(\d+)\/logs$/.exec(rest) : null;
      if (m) {
        // GitHub answers with a redirect to short-lived blob storage.
        res.writeHead(302, { location: `${base()}/_blob/logs/${m[1]}` });
        return res.end();
      }
      m = req.method === "GET" ? /^\/check-runs\/(\d+)\/annotations$/.exec(rest) : null;
      if (m) {
        const j = jobs.get(Number(m[1]));
        return send(
          200,
          (j?.annotations ?? []).map((message) => ({
            annotation_level: "failure",
            title: "",
            message,
            path: ".github",
            start_line: 1,
            end_line: 1,
          })),
        );
      }
    }
    const blob = /^\/_blob\/logs\/(\d+)$/.exec(path);
    if (blob && req.method === "GET") {
      if (req.headers.authorization) return send(400, { message: "blob storage must not receive the token" });
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end(jobs.get(Number(blob[1]))?.log ?? "");
    }
    send(404, { message: `fake GitHub has no ${req.method} ${path}` });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  portRef = port;
  return {
    url: `http://127.0.0.1:${port}`,
    fault: (f) => faults.push({ ...f, used: 0 }),
    clearFaults: () => {
      faults.length = 0;
    },
    requests,
    stalled: () => stalledNow,
    comments,
    tokens,
    permissions,
    branches,
    files,
    pulls,
    issues,
    reactions,
    search,
    jobs,
    attempts,
    history: (target) => log.filter((l) => l.target === target).map((l) => l.body),
    latest: (target) => log.filter((l) => l.target === target).at(-1)?.body,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
