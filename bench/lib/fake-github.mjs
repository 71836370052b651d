// A minimal GitHub API on loopback for benchmarks: answers the calls the web process makes
// for an /autofix comment (also under /api/v3, as GitHub Enterprise Server does), after an
// optional latency. Not a test double for correctness (tests use test/helpers/fake-github.ts).
// It counts what arrived so a bench can tell when every status comment exists:
//   GET /_bench/stats -> { statusComments, replies, reactions, edits, requests, writes }
import { createServer } from "node:http";

export async function startFakeGitHub({ latencyMs = 0 } = {}) {
  let calls = 0;
  let commentId = 1000;
  const stats = { statusComments: 0, replies: 0, reactions: 0, edits: 0, requests: 0, writes: 0 };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const url = (req.url ?? "").replace(/^\/api\/v3/, "");
      const send = (status, data, type = "application/json; charset=utf-8") => {
        res.writeHead(status, { "content-type": type });
        res.end(typeof data === "string" ? data : JSON.stringify(data));
      };
      if (url === "/_bench/stats") return send(200, stats);
      calls++;
      stats.requests++;
      if (req.method !== "GET" && !/\/access_tokens$/.test(url)) stats.writes++;
      const answer = () => {
        if (req.method === "POST" && /\/app\/installations\/\d+\/access_tokens$/.test(url))
          return send(201, {
            token: "ghs_benchtoken000000000000000000000000000",
            expires_at: "2099-01-01T00:00:00Z",
          });
        if (/\/contents\//.test(url)) return send(404, { message: "Not Found" });
        if (/\/collaborators\/[^/]+\/permission$/.test(url))
          return send(200, { permission: "admin", role_name: "admin" });
        if (/\/reactions$/.test(url)) {
          stats.reactions++;
          return send(201, { id: 1 });
        }
        if (/\/branches\//.test(url)) return send(200, { commit: { sha: "a".repeat(40) } });
        if (req.method === "GET" && /\/issues\/\d+\/comments/.test(url)) return send(200, []);
        if (req.method === "POST" && /\/issues\/\d+\/comments$/.test(url)) {
          let text = "";
          try {
            text = String(JSON.parse(body).body ?? "");
          } catch {}
          if (text.includes("<!-- autofix:status")) stats.statusComments++;
          else stats.replies++;
          return send(201, { id: ++commentId, body: text });
        }
        if (req.method === "PATCH" && /\/issues\/comments\/\d+$/.test(url)) {
          stats.edits++;
          return send(200, {});
        }
        send(404, { message: `fake GitHub has no route for ${req.method} ${url}` });
      };
      if (latencyMs > 0) setTimeout(answer, latencyMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls: () => calls,
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * The same fake in a process of its own, so the load generator's event loop and the fake
 * GitHub do not slow each other down (a command makes about seven GitHub calls).
 */
export async function startFakeGitHubProcess({ latencyMs = 0 } = {}) {
  const { fork } = await import("node:child_process");
  const child = fork(new URL(import.meta.url), ["--serve", String(latencyMs)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m.url));
    child.once("exit", (code) => reject(new Error(`fake GitHub exited with ${code}`)));
  });
  return {
    url,
    stats: async () => (await fetch(`${url}/_bench/stats`)).json(),
    close: () =>
      new Promise((r) => {
        child.once("exit", r);
        child.kill("SIGTERM");
      }),
  };
}

if (process.argv[2] === "--serve" && process.send) {
  const gh = await startFakeGitHub({ latencyMs: Number(process.argv[3] ?? 0) });
  process.send({ url: gh.url });
}
