import type { MessageParam } from "@anthropic-ai/sdk/resources/messages/messages";

/**
 * Context trimming, pure. Tool outputs (file contents, command logs) are the bulk of a long
 * conversation and go stale fast. When the context grows past a threshold, the older ones are
 * replaced by a short note; the most recent ones and everything the model wrote stay intact.
 */

export const TRIMMED_PREFIX = "[older tool output removed to save context";

export interface TrimOptions {
  /** Tool results to keep whole, counted from the end. */
  keepRecent: number;
  /** Results shorter than this are left alone: trimming them saves nothing. */
  minChars: number;
}

export const DEFAULT_TRIM: TrimOptions = { keepRecent: 6, minChars: 400 };

/** Context size of the last request in tokens, as the API reported it. */
export function contextTokens(u: {
  input_tokens: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}): number {
  return u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
}

function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((b) => (b && typeof b === "object" && "text" in b ? String((b as { text: unknown }).text) : ""))
      .join("");
  }
  return "";
}

/**
 * Replace old tool_result contents with a note. Returns a new array (input untouched) and how
 * many characters were removed. Tool-use ids and is_error flags are kept, so the conversation
 * stays valid for the API.
 */
export function trimToolResults(
  messages: readonly MessageParam[],
  opts: TrimOptions = DEFAULT_TRIM,
): { messages: MessageParam[]; removedChars: number; trimmed: number } {
  const positions: Array<[number, number]> = [];
  messages.forEach((m, i) => {
    if (m.role !== "user" || typeof m.content === "string") return;
    m.content.forEach((b, j) => {
      if (b.type === "tool_result") positions.push([i, j]);
    });
  });
  const old = new Set(
    positions.slice(0, Math.max(0, positions.length - opts.keepRecent)).map(([i, j]) => `${i}:${j}`),
  );
  let removedChars = 0;
  let trimmed = 0;
  const out = messages.map((m, i) => {
    if (m.role !== "user" || typeof m.content === "string") return m;
    let changed = false;
    const content = m.content.map((b, j) => {
      if (b.type !== "tool_result" || !old.has(`${i}:${j}`)) return b;
      const text = resultText(b.content);
      if (text.startsWith(TRIMMED_PREFIX) || text.length < opts.minChars) return b;
      changed = true;
      removedChars += text.length;
      trimmed++;
      return { ...b, content: `${TRIMMED_PREFIX}: ${text.length} characters; run the tool again if needed]` };
    });
    return changed ? { ...m, content } : m;
  });
  return { messages: out, removedChars, trimmed };
}

/**
 * The request's copy of the conversation with a cache breakpoint on its last block. With the
 * breakpoints on the system prompt and the tools, each turn then reads everything the
 * previous turn sent from the cache and pays full price only for the new tool results.
 * The stored conversation is left without breakpoints, so at most one rides on the messages
 * (the API allows four in all). Pure.
 */
export function withCacheBreakpoint(messages: readonly MessageParam[]): MessageParam[] {
  const last = messages.at(-1);
  if (!last) return [...messages];
  const blocks =
    typeof last.content === "string" ? [{ type: "text" as const, text: last.content }] : [...last.content];
  const tail = blocks.at(-1);
  if (!tail) return [...messages];
  blocks[blocks.length - 1] = { ...tail, cache_control: { type: "ephemeral" } } as typeof tail;
  return [...messages.slice(0, -1), { ...last, content: blocks } as MessageParam];
}
