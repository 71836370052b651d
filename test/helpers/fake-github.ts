import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small GitHub API for the worker tests: installation tokens and issue comments. Real
 * HTTP, so the production Probot/Octokit client talks to it (also from a child process).
 */

export interface FakeComment {
  id: number;
  issue: string;
  body: string;
  edits: string[];
}

export interface FakeGitHub {
  url: string;
  comments: Map<number, FakeComment>;
  tokens: string[];
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

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const comments = new Map<number, FakeComment>();
  const log: { target: string; body: string }[] = [];
  const tokens: string[] = [];
  let nextId = 1000;
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, data: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(data));
    };
    const path = url.pathname.replace(/^\/api\/v3/, "");
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
    if (req.method === "PATCH" && commentMatch) {
      const c = comments.get(Number(commentMatch[3]));
      if (!c) return send(404, { message: "Not Found" });
      const b = await body(req);
      c.body = String(b.body);
      c.edits.push(c.body);
      log.push({ target: c.issue, body: c.body });
      return send(200, { id: c.id, body: c.body });
    }
    send(404, { message: `fake GitHub has no ${req.method} ${path}` });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    comments,
    tokens,
    history: (target) => log.filter((l) => l.target === target).map((l) => l.body),
    latest: (target) => log.filter((l) => l.target === target).at(-1)?.body,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
