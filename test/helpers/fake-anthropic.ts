import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A fake Anthropic Messages API on 127.0.0.1: a real HTTP server the real SDK reaches through
 * `baseURL`. It answers POST /v1/messages from a script (tool calls, text, usage numbers),
 * records every request body it got and can delay an answer (honouring a client that gives up).
 */

export interface FakeUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

export type FakeBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id?: string; name: string; input: unknown };

export interface FakeReply {
  content: FakeBlock[];
  stop_reason?: "end_turn" | "tool_use" | "max_tokens" | "refusal";
  usage?: FakeUsage;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer with this HTTP status and an error body instead. */
  status?: number;
  /** Close the connection without an answer (a dropped connection, a proxy that resets). */
  drop?: boolean;
}

/** `n` failed answers of an outage: HTTP `status` (529 overloaded, 500, a proxy's 502), or dropped connections. */
export function outage(n: number, status: number | "drop" = 529): FakeReply[] {
  return Array.from({ length: n }, () =>
    status === "drop" ? { content: [], drop: true } : { content: [], status },
  );
}

/** A scripted step: a fixed reply, or one computed from the request (to react to tool results). */
export type FakeStep = FakeReply | ((request: RecordedRequest) => FakeReply);

export interface RecordedRequest {
  model: string;
  max_tokens: number;
  system?: unknown;
  tools?: Array<{ name: string; input_schema: unknown; cache_control?: unknown; description?: string }>;
  messages: Array<{ role: string; content: unknown }>;
  [k: string]: unknown;
}

export interface FakeAnthropic {
  url: string;
  requests: RecordedRequest[];
  /** Requests whose client went away before the answer (aborted). */
  aborted: number;
  push(...steps: FakeStep[]): void;
  /** Steps not consumed yet. */
  remaining(): number;
  close(): Promise<void>;
}

let ids = 0;

export const text = (t: string): FakeBlock => ({ type: "text", text: t });
export const tool = (name: string, input: unknown): FakeBlock => ({ type: "tool_use", name, input });

/** A reply calling tools (stop_reason tool_use) with default usage. */
export function calls(...blocks: FakeBlock[]): FakeReply {
  return { content: blocks, stop_reason: "tool_use" };
}

/** The tool_result blocks of the last user message of a request. */
export function lastToolResults(
  req: RecordedRequest,
): Array<{ tool_use_id: string; content: string; is_error?: boolean }> {
  const last = req.messages.at(-1);
  if (!last || !Array.isArray(last.content)) return [];
  return (last.content as Array<Record<string, unknown>>)
    .filter((b) => b.type === "tool_result")
    .map((b) => ({
      tool_use_id: String(b.tool_use_id),
      content: typeof b.content === "string" ? b.content : JSON.stringify(b.content),
      ...(b.is_error ? { is_error: true } : {}),
    }));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

export async function startFakeAnthropic(steps: FakeStep[] = []): Promise<FakeAnthropic> {
  const queue = [...steps];
  const requests: RecordedRequest[] = [];
  const state = { aborted: 0 };

  const server: Server = createServer(async (req, res) => {
    if (req.method !== "POST" || !req.url?.startsWith("/v1/messages")) {
      send(res, 404, {
        type: "error",
        error: { type: "not_found_error", message: `no route ${req.method} ${req.url}` },
      });
      return;
    }
    const body = JSON.parse(await readBody(req)) as RecordedRequest;
    requests.push(body);
    const step = queue.shift();
    const reply: FakeReply = step
      ? typeof step === "function"
        ? step(body)
        : step
      : { content: [text("(fake: the script is exhausted)")], stop_reason: "end_turn" };
    if (reply.delayMs) {
      const gone = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), reply.delayMs);
        res.once("close", () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      if (gone || res.destroyed) {
        state.aborted++;
        return;
      }
    }
    if (reply.drop) {
      req.socket.destroy();
      return;
    }
    if (reply.status && reply.status >= 400) {
      const type = reply.status === 529 ? "overloaded_error" : "api_error";
      send(res, reply.status, { type: "error", error: { type, message: `fake failure ${reply.status}` } });
      return;
    }
    const content = reply.content.map((b) =>
      b.type === "tool_use" ? { ...b, id: b.id ?? `toolu_fake_${++ids}` } : b,
    );
    send(res, 200, {
      id: `msg_fake_${++ids}`,
      type: "message",
      role: "assistant",
      model: body.model,
      content,
      stop_reason:
        reply.stop_reason ?? (content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn"),
      stop_sequence: null,
      usage: {
        input_tokens: reply.usage?.input_tokens ?? 100,
        output_tokens: reply.usage?.output_tokens ?? 20,
        cache_read_input_tokens: reply.usage?.cache_read_input_tokens ?? 0,
        cache_creation_input_tokens: reply.usage?.cache_creation_input_tokens ?? 0,
      },
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get aborted() {
      return state.aborted;
    },
    push: (...more) => queue.push(...more),
    remaining: () => queue.length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
