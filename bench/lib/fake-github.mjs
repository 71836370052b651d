// A minimal GitHub API on loopback for benchmarks: answers the calls the web process makes
// for an /autofix comment, immediately. Not a test double for correctness (tests use nock).
import { createServer } from "node:http";

export async function startFakeGitHub() {
  let calls = 0;
  let commentId = 1000;
  const server = createServer((req, res) => {
    calls++;
    let _body = "";
    req.on("data", (c) => {
      _body += c;
    });
    req.on("end", () => {
      const url = req.url ?? "";
      const send = (status, data, type = "application/json; charset=utf-8") => {
        res.writeHead(status, { "content-type": type });
        res.end(typeof data === "string" ? data : JSON.stringify(data));
      };
      if (req.method === "POST" && /\/app\/installations\/\d+\/access_tokens$/.test(url))
        return send(201, {
          token: "ghs_benchtoken000000000000000000000000000",
          expires_at: "2099-01-01T00:00:00Z",
        });
      if (/\/contents\//.test(url)) return send(404, { message: "Not Found" });
      if (/\/collaborators\/[^/]+\/permission$/.test(url))
        return send(200, { permission: "admin", role_name: "admin" });
      if (/\/reactions$/.test(url)) return send(201, { id: 1 });
      if (/\/branches\//.test(url)) return send(200, { commit: { sha: "a".repeat(40) } });
      if (req.method === "GET" && /\/issues\/\d+\/comments/.test(url)) return send(200, []);
      if (req.method === "POST" && /\/issues\/\d+\/comments$/.test(url))
        return send(201, { id: ++commentId });
      if (req.method === "PATCH" && /\/issues\/comments\/\d+$/.test(url)) return send(200, {});
      send(404, { message: `fake GitHub has no route for ${req.method} ${url}` });
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
export async function startFakeGitHubProcess() {
  const { fork } = await import("node:child_process");
  const child = fork(new URL(import.meta.url), ["--serve"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m.url));
    child.once("exit", (code) => reject(new Error(`fake GitHub exited with ${code}`)));
  });
  return {
    url,
    close: () =>
      new Promise((r) => {
        child.once("exit", r);
        child.kill("SIGTERM");
      }),
  };
}

if (process.argv[2] === "--serve" && process.send) {
  const gh = await startFakeGitHub();
  process.send({ url: gh.url });
}
