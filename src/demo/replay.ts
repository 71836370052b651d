import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";

/**
 * A replay of a recorded model session for the offline demo: a small HTTP server on
 * 127.0.0.1 that answers `POST /v1/messages` with the recorded Messages API responses, in
 * order, so the real SDK and the real harness run against it. It checks that each request
 * follows the recording (the tool results answer the tool calls it served last) and refuses,
 * with an API error body, anything it cannot answer: a request off the recording, or one
 * past the end of the transcript.
 */

const usageSchema = z.looseObject({
  input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
  cache_read_input_tokens: z.number().int().nonnegative().nullable().optional(),
  cache_creation_input_tokens: z.number().int().nonnegative().nullable().optional(),
});

const blockSchema = z.union([
  z.strictObject({ type: z.literal("text"), text: z.string() }),
  z.strictObject({
    type: z.literal("tool_use"),
    id: z.string().regex(/^toolu_[A-Za-z0-9_]+$/),
    name: z.string().min(1),
    input: z.record(z.string(), z.unknown()),
  }),
]);

export const recordedMessageSchema = z.looseObject({
  id: z.string().min(1),
  type: z.literal("message"),
  role: z.literal("assistant"),
  model: z.string().min(1),
  content: z.array(blockSchema).min(1),
  stop_reason: z.enum(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal"]),
  stop_sequence: z.string().nullable(),
  usage: usageSchema,
});
export type RecordedMessage = z.infer<typeof recordedMessageSchema>;

export const transcriptSchema = z.strictObject({
  description: z.string().optional(),
  model: z.string().min(1),
  responses: z.array(recordedMessageSchema).min(1),
});
export type Transcript = z.infer<typeof transcriptSchema>;

/** Read and check a transcript file; the error names the file and every problem. */
export async function loadTranscript(path: string): Promise<Transcript> {
  const text = await readFile(path, "utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const r = transcriptSchema.safeParse(raw);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`${path} is not a transcript: ${problems.join("; ")}`);
  }
  return r.data;
}

export interface ReplayEvent {
  /** 1-based number of the request. */
  request: number;
  /** The response served, or null when the request was refused. */
  served: RecordedMessage | null;
  error?: string;
}

export interface ReplayServer {
  url: string;
  /** Responses served so far. */
  served(): number;
  /** Responses not served yet. */
  remaining(): number;
  /** Refusals: requests off the recording or past its end. */
  refusals(): string[];
  close(): Promise<void>;
}

export interface ReplayOptions {
  /** Check that each request answers the tool calls of the previous response (default true). */
  strict?: boolean;
  onEvent?: (e: ReplayEvent) => void;
}

interface RequestBody {
  stream?: unknown;
  messages?: Array<{ role?: string; content?: unknown }>;
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

function apiError(res: ServerResponse, status: number, type: string, message: string): void {
  send(res, status, { type: "error", error: { type, message } });
}

/** The tool_use ids a request answers (the tool_result blocks of its last user message). */
function answeredToolIds(body: RequestBody): string[] | null {
  const last = body.messages?.at(-1);
  if (last?.role !== "user" || !Array.isArray(last.content)) return null;
  return (last.content as Array<Record<string, unknown>>)
    .filter((b) => b.type === "tool_result")
    .map((b) => String(b.tool_use_id));
}

/**
 * Why a request does not follow the recording, or null when it does. A request with a single
 * message starts a new conversation (a new phase); any other must answer every tool call of
 * the response served before it, or, after a reply without tool calls, carry a text nudge.
 */
export function offRecording(body: RequestBody, previous: RecordedMessage | null): string | null {
  const messages = body.messages ?? [];
  if (messages.length === 0) return "the request has no messages";
  if (messages.length === 1) return null;
  if (!previous) return "the first request must start a conversation (one user message)";
  const expected = previous.content.filter((b) => b.type === "tool_use").map((b) => b.id);
  const got = answeredToolIds(body);
  if (expected.length === 0) {
    return got === null || got.length === 0
      ? null
      : `the recorded reply had no tool calls, but the request answers ${got.join(", ")}`;
  }
  if (!got || got.join(",") !== expected.join(",")) {
    return `expected tool results for ${expected.join(", ")}, got ${got?.length ? got.join(", ") : "none"}`;
  }
  return null;
}

export async function startReplayServer(
  transcript: Transcript,
  opts: ReplayOptions = {},
): Promise<ReplayServer> {
  const strict = opts.strict ?? true;
  const total = transcript.responses.length;
  let next = 0;
  let requests = 0;
  const refused: string[] = [];
  const emit = (e: ReplayEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // A listener must not break the replay.
    }
  };
  const refuse = (res: ServerResponse, status: number, type: string, message: string) => {
    refused.push(message);
    emit({ request: requests, served: null, error: message });
    apiError(res, status, type, message);
  };

  const server = createServer(async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "POST" || path !== "/v1/messages") {
      apiError(
        res,
        404,
        "not_found_error",
        `replay: this demo server only answers POST /v1/messages (got ${req.method} ${path})`,
      );
      return;
    }
    requests++;
    let body: RequestBody;
    try {
      body = JSON.parse(await readBody(req)) as RequestBody;
    } catch {
      refuse(res, 400, "invalid_request_error", "replay: the request body is not JSON");
      return;
    }
    if (body.stream) {
      refuse(res, 400, "invalid_request_error", "replay: streaming is not part of the recording");
      return;
    }
    if (next >= total) {
      refuse(
        res,
        400,
        "invalid_request_error",
        `replay: the recorded transcript has no more responses (all ${total} were served); this demo server only replays the recorded session`,
      );
      return;
    }
    if (strict) {
      const why = offRecording(body, next > 0 ? transcript.responses[next - 1]! : null);
      if (why) {
        refuse(
          res,
          400,
          "invalid_request_error",
          `replay: request ${requests} does not follow the recording (${why}); the harness behaved differently from the recorded session`,
        );
        return;
      }
    }
    const message = transcript.responses[next++]!;
    emit({ request: requests, served: message });
    send(res, 200, message);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served: () => next,
    remaining: () => total - next,
    refusals: () => [...refused],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
