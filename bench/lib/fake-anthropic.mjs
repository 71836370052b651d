// A zero-latency fake Anthropic Messages API on loopback for benchmarks, after
// test/helpers/fake-anthropic.ts (tests are not built, so this is a plain .mjs copy of the
// part the benches need). Each POST /v1/messages is answered at once by `reply(request)`.
// It records every request: the raw body, its parsed form, and the time spent inside the
// server (from the request's arrival to the end of the answer, body reading included).
import { once } from "node:events";
import { createServer } from "node:http";

let ids = 0;

export const tool = (name, input) => ({ type: "tool_use", name, input });

export async function startFakeAnthropic(reply) {
  const requests = [];
  const server = createServer((req, res) => {
    const t0 = performance.now();
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const body = JSON.parse(raw);
      const r = reply(body, requests.length);
      const content = r.content.map((b) =>
        b.type === "tool_use" ? { ...b, id: `toolu_bench_${++ids}` } : b,
      );
      const data = JSON.stringify({
        id: `msg_bench_${++ids}`,
        type: "message",
        role: "assistant",
        model: body.model,
        content,
        stop_reason: content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn",
        stop_sequence: null,
        usage: {
          input_tokens: 100,
          output_tokens: 20,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
      res.end(data);
      const t1 = performance.now();
      requests.push({ raw, body, arrivedAt: t0, answeredAt: t1, serverMs: t1 - t0 });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    serverMs: () => requests.reduce((a, r) => a + r.serverMs, 0),
    reset: () => {
      requests.length = 0;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
