import type Anthropic from "@anthropic-ai/sdk";
import type {
  ContentBlock,
  ContentBlockParam,
  MessageParam,
  ToolResultBlockParam,
} from "@anthropic-ai/sdk/resources/messages/messages";
import { redact } from "../shared/redact.js";
import { asUntrustedToolResult } from "../shared/sanitize.js";
import { contextTokens, DEFAULT_TRIM, trimToolResults, withCacheBreakpoint } from "./context.js";
import { clip } from "./output.js";
import {
  addUsage,
  type BudgetStop,
  checkBudget,
  isModelOutage,
  maxOutputTokens,
  outageStep,
  type PhaseLimits,
  usageOfTurn,
} from "./spend.js";
import { executeTool, type ToolContext, type ToolDef, toApiTools } from "./tools/index.js";
import {
  type AgentUsage,
  emptyUsage,
  type PhaseEndCode,
  type PhaseName,
  type ProgressListener,
  type TranscriptEntry,
} from "./types.js";

/**
 * One phase's conversation with the model: our own loop over `messages.create`, not the SDK's
 * tool runner, so that budgets, cancellation, redaction and the gates stay in the harness.
 */

/**
 * What the phase does with the model's `finish`: accept it (with what the phase keeps from it),
 * refuse it (the model continues), or stop.
 */
export type FinishVerdict<T> =
  | { kind: "accept"; note: string; value: T }
  | { kind: "retry"; message: string }
  | { kind: "stop"; code: PhaseEndCode; reason: string };

export interface LoopOptions<T> {
  client: Anthropic;
  model: string;
  phase: PhaseName;
  system: string;
  userPrompt: string;
  tools: ToolDef[];
  toolContext: Omit<ToolContext, "signal">;
  limits: PhaseLimits;
  /** Whole-job usage before this phase (caps are for the job). */
  jobUsageBefore: AgentUsage;
  /** The job's signal (cancel). */
  jobSignal: AbortSignal;
  /** The phase's signal: job cancel or the phase deadline. */
  phaseSignal: AbortSignal;
  onFinish: (input: unknown, signal: AbortSignal) => Promise<FinishVerdict<T>>;
  onProgress: ProgressListener;
  transcript: TranscriptEntry[];
  now: () => number;
  maxOutputTokens: number;
  /** Trim old tool outputs when the last request's context passed this many tokens. */
  contextTrimTokens: number;
  /** Refused finishes before the phase gives up. */
  maxFinishAttempts: number;
  /** How an outage of the Messages API is waited out (default: 5 min, real timers). */
  modelOutage?: ModelOutageOptions;
}

/** The job-level retry of model calls during an outage (the SDK's own retries come first). */
export interface ModelOutageOptions {
  /** Longest outage waited out, from its first failed call (AUTOFIX_MODEL_OUTAGE_MINUTES). */
  budgetMs: number;
  /** Waits `ms` or until `signal` aborts (tests inject one that does not wait). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The clock the outage is measured with (default: the loop's). */
  now?: () => number;
}

export const DEFAULT_MODEL_OUTAGE_MS = 5 * 60_000;

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface LoopEnd<T> {
  code: PhaseEndCode;
  reason: string;
  /** The accepted finish's value; null when the phase ended without one. */
  accepted: T | null;
  usage: AgentUsage;
  turns: number;
}

const TRANSCRIPT_CHARS = 4000;

/** The assistant's blocks as request params (only what the API accepts back). Pure. */
function toParams(content: readonly ContentBlock[]): ContentBlockParam[] {
  const out: ContentBlockParam[] = [];
  for (const b of content) {
    if (b.type === "text") out.push({ type: "text", text: b.text });
    else if (b.type === "tool_use")
      out.push({ type: "tool_use", id: b.id, name: b.name, input: b.input ?? {} });
    else if (b.type === "thinking")
      out.push({ type: "thinking", thinking: b.thinking, signature: b.signature });
    else if (b.type === "redacted_thinking") out.push({ type: "redacted_thinking", data: b.data });
  }
  return out;
}

function stopFromSignals(
  jobSignal: AbortSignal,
  phaseSignal: AbortSignal,
): BudgetStop | { code: "cancelled"; reason: string } | null {
  if (jobSignal.aborted) return { code: "cancelled", reason: "the job was cancelled" };
  if (phaseSignal.aborted) return { code: "budget_time", reason: "the phase's wall-time budget ran out" };
  return null;
}

export async function runPhaseLoop<T>(o: LoopOptions<T>): Promise<LoopEnd<T>> {
  const apiTools = toApiTools(o.tools);
  const system = [{ type: "text" as const, text: o.system, cache_control: { type: "ephemeral" as const } }];
  let messages: MessageParam[] = [{ role: "user", content: o.userPrompt }];
  let usage = emptyUsage();
  let turns = 0;
  let nudged = false;
  let refusedFinishes = 0;
  let lastContext = 0;
  // The outage in progress: when its first call failed, and how many calls failed since.
  let outage: { since: number; failures: number } | null = null;
  const outageBudget = o.modelOutage?.budgetMs ?? DEFAULT_MODEL_OUTAGE_MS;
  const sleep = o.modelOutage?.sleep ?? sleepUnlessAborted;
  const outageNow = o.modelOutage?.now ?? o.now;
  const note = (
    role: TranscriptEntry["role"],
    kind: TranscriptEntry["kind"],
    content: string,
    extra: Partial<TranscriptEntry> = {},
  ) =>
    o.transcript.push({
      phase: o.phase,
      turn: turns,
      role,
      kind,
      content: clip(redact(content), TRANSCRIPT_CHARS),
      ...extra,
    });
  const end = (code: PhaseEndCode, reason: string, accepted: T | null = null): LoopEnd<T> => {
    note("system", "note", `phase ended: ${code}: ${reason}`);
    return { code, reason, accepted, usage, turns };
  };
  const progress: ProgressListener = (e) => {
    try {
      o.onProgress(e);
    } catch {
      // A broken listener must not break the job.
    }
  };

  note("user", "text", o.userPrompt);
  for (;;) {
    const sig = stopFromSignals(o.jobSignal, o.phaseSignal);
    if (sig) return end(sig.code, sig.reason);
    const jobUsage = addUsage(o.jobUsageBefore, usage);
    const stop = checkBudget(o.limits, { now: o.now(), phaseTurns: turns, jobUsage });
    if (stop) return end(stop.code, stop.reason);

    if (lastContext > o.contextTrimTokens) {
      const t = trimToolResults(messages, DEFAULT_TRIM);
      if (t.trimmed > 0) {
        messages = t.messages;
        note("system", "note", `trimmed ${t.trimmed} old tool outputs (${t.removedChars} characters)`);
      }
    }

    let response: Anthropic.Message;
    try {
      response = await o.client.messages.create(
        {
          model: o.model,
          max_tokens: maxOutputTokens(o.limits, jobUsage, o.maxOutputTokens),
          system,
          tools: apiTools,
          messages: withCacheBreakpoint(messages),
        },
        { signal: o.phaseSignal },
      );
    } catch (err) {
      const s = stopFromSignals(o.jobSignal, o.phaseSignal);
      if (s) return end(s.code, s.reason);
      const why = redact((err as Error).message ?? String(err)).slice(0, 500);
      if (!isModelOutage(err)) return end("model_error", `the model call failed: ${why}`);
      // An outage: wait it out with backoff for a bounded time, saying so, then try again.
      outage ??= { since: outageNow(), failures: 0 };
      outage.failures++;
      const step = outageStep({
        attempt: outage.failures,
        since: outage.since,
        now: outageNow(),
        budgetMs: outageBudget,
      });
      if ("giveUp" in step) return end("model_error", `${step.giveUp}; last error: ${why}`);
      note("system", "note", `model API unavailable (${why}); try ${outage.failures + 1} in ${step.wait} ms`);
      progress({
        type: "model_wait",
        phase: o.phase,
        attempt: outage.failures + 1,
        retryInMs: step.wait,
        error: why,
      });
      await sleep(step.wait, o.phaseSignal);
      continue;
    }
    outage = null;
    turns++;
    const turnUsage = usageOfTurn(o.model, response.usage);
    usage = addUsage(usage, turnUsage);
    lastContext = contextTokens(response.usage);
    progress({ type: "turn", phase: o.phase, turn: turns, maxTurns: o.limits.maxTurns });
    progress({ type: "spend", phase: o.phase, usage, total: addUsage(o.jobUsageBefore, usage) });

    for (const b of response.content) {
      if (b.type === "text" && b.text.trim()) note("assistant", "text", b.text);
      else if (b.type === "tool_use")
        note("assistant", "tool_use", JSON.stringify(b.input ?? {}), { name: b.name });
    }
    messages.push({ role: "assistant", content: toParams(response.content) });

    const toolUses = response.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    if (toolUses.length === 0) {
      if (response.stop_reason === "refusal") return end("model_stopped", "the model declined to continue");
      if (nudged) return end("model_stopped", "the model ended its turn without calling finish");
      nudged = true;
      const text =
        response.stop_reason === "max_tokens"
          ? "Your reply was cut at the output limit. Continue with a tool call; keep replies short."
          : "Continue with a tool call. When the phase's work is done, call `finish`; if you cannot make progress, call `finish` with what you have or explain why and stop.";
      messages.push({ role: "user", content: text });
      note("user", "text", text);
      continue;
    }

    const results: ToolResultBlockParam[] = [];
    let accepted: { note: string; value: T } | null = null;
    for (const use of toolUses) {
      if (accepted !== null || o.phaseSignal.aborted) {
        results.push({
          type: "tool_result",
          tool_use_id: use.id,
          content: "not run: the phase ended",
          is_error: true,
        });
        continue;
      }
      const ctx: ToolContext = { ...o.toolContext, signal: o.phaseSignal };
      const out = await executeTool(o.tools, use.name, use.input, ctx);
      // Tool output is workspace content: hidden parts stripped, marked as untrusted data.
      // (A finish's verdict below is the harness's own text.)
      let content = out.finish === undefined ? asUntrustedToolResult(out.content) : out.content;
      let isError = out.isError;
      if (out.finish !== undefined) {
        const verdict = await o.onFinish(out.finish, o.phaseSignal);
        if (verdict.kind === "accept") {
          content = verdict.note;
          accepted = { note: verdict.note, value: verdict.value };
        } else if (verdict.kind === "stop") {
          note("tool", "tool_result", verdict.reason, { name: use.name, isError: true });
          return end(verdict.code, verdict.reason);
        } else {
          refusedFinishes++;
          content = verdict.message;
          isError = true;
          if (refusedFinishes >= o.maxFinishAttempts) {
            note("tool", "tool_result", content, { name: use.name, isError: true });
            return end("gate_failed", `${verdict.message} (gave up after ${refusedFinishes} attempts)`);
          }
        }
      }
      content = redact(content);
      progress({ type: "tool", phase: o.phase, name: use.name, isError });
      note("tool", "tool_result", content, { name: use.name, isError });
      results.push({
        type: "tool_result",
        tool_use_id: use.id,
        content,
        ...(isError ? { is_error: true } : {}),
      });
    }
    if (accepted !== null) return end("gate_passed", accepted.note, accepted.value);
    messages.push({ role: "user", content: results });
  }
}
