import type { AgentUsage } from "./types.js";

/**
 * Spend control, pure: estimated cost by model family and the budget decisions made before
 * and after each model turn. Prices are estimates in US dollars per million tokens; the
 * cap is a guard rail, not an invoice.
 */

export interface Price {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

const family = (input: number, output: number): Price => ({
  input,
  output,
  // Prompt caching: reads at a tenth of the input price, 5-minute writes at 1.25 times.
  cacheRead: input * 0.1,
  cacheWrite: input * 1.25,
});

/** Checked in order: the first family whose pattern matches the model id wins. */
export const PRICE_TABLE: ReadonlyArray<{ family: string; match: RegExp; price: Price }> = [
  { family: "sonnet-5", match: /sonnet-5/, price: family(2, 10) },
  { family: "opus", match: /opus/, price: family(5, 25) },
  { family: "sonnet", match: /sonnet/, price: family(3, 15) },
  { family: "haiku", match: /haiku/, price: family(1, 5) },
];

/** Unknown models are priced like the most expensive family, so the cap errs on the safe side. */
const FALLBACK_PRICE: Price = family(5, 25);

export function priceFor(model: string): Price {
  return PRICE_TABLE.find((p) => p.match.test(model))?.price ?? FALLBACK_PRICE;
}

/** Token counts as the Messages API reports them (cache fields may be null). */
export interface ApiUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

export function estimateCost(model: string, u: ApiUsage): number {
  const p = priceFor(model);
  const cost =
    (u.input_tokens * p.input +
      u.output_tokens * p.output +
      (u.cache_read_input_tokens ?? 0) * p.cacheRead +
      (u.cache_creation_input_tokens ?? 0) * p.cacheWrite) /
    1_000_000;
  return Math.round(cost * 1e6) / 1e6;
}

/** Usage of one turn in this project's shape, with its estimated cost. */
export function usageOfTurn(model: string, u: ApiUsage): AgentUsage {
  return {
    inputTokens: u.input_tokens,
    outputTokens: u.output_tokens,
    cacheReadTokens: u.cache_read_input_tokens ?? 0,
    cacheWriteTokens: u.cache_creation_input_tokens ?? 0,
    costUsd: estimateCost(model, u),
    turns: 1,
  };
}

export function addUsage(a: AgentUsage, b: AgentUsage): AgentUsage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    costUsd: Math.round((a.costUsd + b.costUsd) * 1e6) / 1e6,
    turns: a.turns + b.turns,
  };
}

/** Every token the job was billed for, cached or not: what max_tokens caps. */
function totalTokens(u: AgentUsage): number {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;
}

export interface PhaseLimits {
  /** Absolute deadline of the phase (epoch ms). */
  deadline: number;
  maxTurns: number;
  /** Whole-job caps. */
  maxTokens: number;
  maxCostUsd: number;
}

export type BudgetStop =
  | { code: "budget_time"; reason: string }
  | { code: "budget_turns"; reason: string }
  | { code: "budget_tokens"; reason: string }
  | { code: "budget_cost"; reason: string };

/**
 * May the loop make another model call? `phaseTurns` counts this phase's turns,
 * `jobUsage` the whole job's spend so far.
 */
export function checkBudget(
  limits: PhaseLimits,
  state: { now: number; phaseTurns: number; jobUsage: AgentUsage },
): BudgetStop | null {
  if (state.now >= limits.deadline) {
    return { code: "budget_time", reason: "the phase's wall-time budget ran out" };
  }
  if (state.phaseTurns >= limits.maxTurns) {
    return { code: "budget_turns", reason: `the phase used all ${limits.maxTurns} model turns` };
  }
  const tokens = totalTokens(state.jobUsage);
  if (tokens >= limits.maxTokens) {
    return {
      code: "budget_tokens",
      reason: `the job used ${tokens} tokens, at or over the cap of ${limits.maxTokens}`,
    };
  }
  if (state.jobUsage.costUsd >= limits.maxCostUsd) {
    return {
      code: "budget_cost",
      reason: `the job's estimated cost $${state.jobUsage.costUsd.toFixed(2)} reached the cap of $${limits.maxCostUsd.toFixed(2)}`,
    };
  }
  return null;
}

/** Output tokens to ask for on the next turn: never more than the token budget has left. */
export function maxOutputTokens(limits: PhaseLimits, jobUsage: AgentUsage, preferred: number): number {
  const left = limits.maxTokens - totalTokens(jobUsage);
  return Math.max(1, Math.min(preferred, left));
}

/**
 * A Messages API failure worth waiting out (after the SDK's own retries): an overload (529),
 * a server error (500, 503), a proxy's 502 or 504, a rate limit, a timeout or a dropped
 * connection. A 400 (bad request), 401/403 (key) or 404 (model) is not: waiting does not help.
 * Pure (reads the error's status and name).
 */
export function isModelOutage(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { status?: unknown; name?: unknown };
  if (e.name === "APIUserAbortError" || e.name === "AbortError") return false;
  if (typeof e.status === "number") return e.status === 408 || e.status === 429 || e.status >= 500;
  return e.name === "APIConnectionError" || e.name === "APIConnectionTimeoutError";
}

/** Backoff between tries during an outage: 5 s, 10 s, 20 s, 40 s, then every 60 s. Pure. */
export function outageDelayMs(attempt: number): number {
  return Math.min(60_000, 5_000 * 2 ** Math.max(0, attempt - 1));
}

export type OutageStep = { wait: number } | { giveUp: string };

/**
 * After the `attempt`-th failed call of an outage that began at `since`: wait, or give up when
 * the next try would come after the budget. Pure.
 */
export function outageStep(o: { attempt: number; since: number; now: number; budgetMs: number }): OutageStep {
  const wait = outageDelayMs(o.attempt);
  const waited = o.now - o.since;
  if (waited + wait > o.budgetMs) {
    const min = Math.round((o.budgetMs / 60_000) * 10) / 10;
    return {
      giveUp: `the model API was unavailable for ${min} min (${o.attempt} failed ${o.attempt === 1 ? "call" : "calls"}; AUTOFIX_MODEL_OUTAGE_MINUTES)`,
    };
  }
  return { wait };
}

/** The status line while an outage is waited out: "⏸ Waiting for the model API (attempt 3, retrying in 40 s)". Pure. */
export function modelWaitMessage(e: { attempt: number; retryInMs: number }): string {
  return `⏸ Waiting for the model API (attempt ${e.attempt}, retrying in ${Math.round(e.retryInMs / 1000)} s)`;
}
