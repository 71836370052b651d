import type { Redis } from "ioredis";
import { z } from "zod";
import { POOL_NAMES } from "../config/pools.js";
import { FINAL_STATES, type JobState } from "../status/model.js";

/**
 * Job numbers shared between processes. Workers run elsewhere, so each one adds its finished
 * jobs to counters in Redis (one hash, `<prefix>:ops:jobs`, under the queue prefix so a hash
 * tag such as {autofix} keeps it in the queues' Cluster slot), and the web process reads them
 * when Prometheus scrapes /metrics. Counters only grow; Prometheus computes rates.
 *
 * Contract for the worker (call once per job that reached a final state, after its status
 * comment is final; a retried attempt that ends in a final state counts once):
 *
 *   await recordJobOutcome(redis, settings.AUTOFIX_QUEUE_PREFIX, {
 *     pool: "n150",                         // the job's pool (a known pool name)
 *     state: "succeeded",                   // a final state: succeeded | partial | failed | cancelled | timed_out
 *     phases: [{ name: "reproduce", ms: 61_000 }, { name: "fix", ms: 300_000 }],
 *                                           // wall time per phase that ran; names [a-z0-9_-], up to 40 chars
 *     gates: { passed: 2, total: 3 },       // gate checks run by the harness and how many passed
 *     tokens: 123_456,                      // model tokens, input + output, whole job
 *     costUsd: 1.23,                        // estimated spend, whole job
 *   });
 *
 * It never throws: metrics must not fail a job. It resolves to `{ ok: false, error }` when the
 * input does not validate or Redis does not answer; log that and move on.
 */

export const JOB_METRICS_KEY = "ops:jobs";

/** Phase duration histogram buckets, in seconds (phase budgets are minutes; builds up to an hour). */
export const PHASE_BUCKETS_SECONDS = [5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600] as const;

const NAME = /^[a-z0-9_-]{1,40}$/;

export const jobOutcomeSchema = z.object({
  pool: z
    .string()
    .refine((p) => POOL_NAMES.includes(p), { message: `must be one of ${POOL_NAMES.join(", ")}` }),
  state: z.enum(FINAL_STATES as unknown as [JobState, ...JobState[]]),
  phases: z
    .array(
      z.object({
        name: z.string().regex(NAME, "phase names are [a-z0-9_-], up to 40 characters"),
        ms: z.number().finite().nonnegative(),
      }),
    )
    .default([]),
  gates: z
    .object({ passed: z.number().int().nonnegative(), total: z.number().int().nonnegative() })
    .refine((g) => g.passed <= g.total, { message: "passed cannot exceed total" })
    .default({ passed: 0, total: 0 }),
  tokens: z.number().int().nonnegative().default(0),
  costUsd: z.number().finite().nonnegative().default(0),
});

export type JobOutcome = z.input<typeof jobOutcomeSchema>;

export function jobMetricsKey(prefix: string): string {
  return `${prefix}:${JOB_METRICS_KEY}`;
}

/** The counter increments one outcome adds (pure; field names are `kind|label|label...`). */
export function outcomeIncrements(outcome: z.output<typeof jobOutcomeSchema>): {
  ints: Array<[string, number]>;
  floats: Array<[string, number]>;
} {
  const { pool } = outcome;
  const ints: Array<[string, number]> = [[`jobs|${pool}|${outcome.state}`, 1]];
  const floats: Array<[string, number]> = [];
  for (const phase of outcome.phases) {
    const seconds = phase.ms / 1000;
    ints.push([`phase_count|${pool}|${phase.name}`, 1]);
    floats.push([`phase_seconds|${pool}|${phase.name}`, seconds]);
    for (const le of PHASE_BUCKETS_SECONDS) {
      if (seconds <= le) ints.push([`phase_le|${pool}|${phase.name}|${le}`, 1]);
    }
  }
  if (outcome.gates.total > 0) {
    ints.push([`gates_total|${pool}`, outcome.gates.total]);
    ints.push([`gates_passed|${pool}`, outcome.gates.passed]);
  }
  if (outcome.tokens > 0) ints.push([`tokens|${pool}`, outcome.tokens]);
  if (outcome.costUsd > 0) floats.push([`cost_usd|${pool}`, outcome.costUsd]);
  return { ints, floats };
}

/** Add one finished job to the shared counters. Never throws (see the contract above). */
export async function recordJobOutcome(
  redis: Redis,
  prefix: string,
  outcome: JobOutcome,
): Promise<{ ok: true } | { ok: false; error: string }> {
  const parsed = jobOutcomeSchema.safeParse(outcome);
  if (!parsed.success) {
    return {
      ok: false,
      error: `invalid job outcome: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    };
  }
  const key = jobMetricsKey(prefix);
  const { ints, floats } = outcomeIncrements(parsed.data);
  try {
    const tx = redis.multi();
    for (const [field, n] of ints) tx.hincrby(key, field, n);
    for (const [field, n] of floats) tx.hincrbyfloat(key, field, n);
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) return { ok: false, error: String(failed?.[0] ?? "transaction aborted") };
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export interface JobMetricsSnapshot {
  outcomes: Array<{ pool: string; state: string; count: number }>;
  phases: Array<{
    pool: string;
    phase: string;
    count: number;
    sumSeconds: number;
    /** Cumulative counts per upper bound, in PHASE_BUCKETS_SECONDS order (+Inf is `count`). */
    buckets: Array<{ le: number; count: number }>;
  }>;
  gates: Array<{ pool: string; passed: number; total: number }>;
  spend: Array<{ pool: string; tokens: number; costUsd: number }>;
}

/** Turn the hash back into numbers (pure). Fields that do not parse are skipped, not fatal. */
export function parseJobMetrics(hash: Record<string, string>): JobMetricsSnapshot {
  const outcomes: JobMetricsSnapshot["outcomes"] = [];
  const phases = new Map<string, JobMetricsSnapshot["phases"][number]>();
  const gates = new Map<string, { pool: string; passed: number; total: number }>();
  const spend = new Map<string, { pool: string; tokens: number; costUsd: number }>();
  const phaseOf = (pool: string, phase: string) => {
    const id = `${pool}|${phase}`;
    let p = phases.get(id);
    if (!p) {
      p = {
        pool,
        phase,
        count: 0,
        sumSeconds: 0,
        buckets: PHASE_BUCKETS_SECONDS.map((le) => ({ le, count: 0 })),
      };
      phases.set(id, p);
    }
    return p;
  };
  const gateOf = (pool: string) => {
    const g = gates.get(pool) ?? { pool, passed: 0, total: 0 };
    gates.set(pool, g);
    return g;
  };
  const spendOf = (pool: string) => {
    const s = spend.get(pool) ?? { pool, tokens: 0, costUsd: 0 };
    spend.set(pool, s);
    return s;
  };
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    const [kind, pool, a, b] = field.split("|");
    if (!pool) continue;
    switch (kind) {
      case "jobs":
        if (a) outcomes.push({ pool, state: a, count: value });
        break;
      case "phase_count":
        if (a) phaseOf(pool, a).count = value;
        break;
      case "phase_seconds":
        if (a) phaseOf(pool, a).sumSeconds = value;
        break;
      case "phase_le": {
        const bucket = a ? phaseOf(pool, a).buckets.find((x) => String(x.le) === b) : undefined;
        if (bucket) bucket.count = value;
        break;
      }
      case "gates_total":
        gateOf(pool).total = value;
        break;
      case "gates_passed":
        gateOf(pool).passed = value;
        break;
      case "tokens":
        spendOf(pool).tokens = value;
        break;
      case "cost_usd":
        spendOf(pool).costUsd = value;
        break;
    }
  }
  const byName = <T extends { pool: string }>(a: T, b: T) => a.pool.localeCompare(b.pool);
  return {
    outcomes: outcomes.sort((x, y) => byName(x, y) || x.state.localeCompare(y.state)),
    phases: [...phases.values()].sort((x, y) => byName(x, y) || x.phase.localeCompare(y.phase)),
    gates: [...gates.values()].sort(byName),
    spend: [...spend.values()].sort(byName),
  };
}

export async function readJobMetrics(redis: Redis, prefix: string): Promise<JobMetricsSnapshot> {
  return parseJobMetrics(await redis.hgetall(jobMetricsKey(prefix)));
}
