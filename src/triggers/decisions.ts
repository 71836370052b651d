import type { Redis } from "ioredis";
import { z } from "zod";
import { modelText } from "../publish/markdown-text.js";
import type { JobQueues } from "../queue/queues.js";
import { redact } from "../shared/redact.js";

/**
 * What the web process decided, and why, kept per subject so `/autofix why` can answer from the
 * record instead of guessing: the trigger seen, the CI streak and its threshold, infra runs that
 * were not counted, the permission check, dedup, the loop breakers, people's work found, the
 * last job. A subject is a target (`owner/repo#N`) or a CI job scope (repository, workflow,
 * job); a tracking issue is linked to its CI scope, so `why` on it shows both.
 *
 * Records are data: short, redacted, capped per subject (the newest MAX_DECISIONS), expiring
 * after 90 days. Rendering is pure (renderWhy).
 */

export const DECISION_KINDS = [
  "trigger",
  "streak",
  "infra",
  "permission",
  "config",
  "dedup",
  "loop-breaker",
  "people",
  "job",
  "ci-on-fix",
] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

export const decisionEntrySchema = z.object({
  at: z.string(),
  kind: z.enum(DECISION_KINDS),
  /** One line a person reads. */
  text: z.string().max(500),
  jobId: z.string().max(100).optional(),
  pool: z.string().max(40).optional(),
  /** Order of recording (one counter per Redis prefix): ties of `at` keep the order things happened in. */
  seq: z.number().int().optional(),
});
export type DecisionEntry = z.infer<typeof decisionEntrySchema>;

export const MAX_DECISIONS = 30;
const TTL_SECONDS = 90 * 24 * 3600;

/** The subject of a target: `owner/repo#N`, lower case. Pure. */
export function targetSubject(t: { owner: string; repo: string; number: number }): string {
  return `${t.owner}/${t.repo}#${t.number}`.toLowerCase();
}

/** The subject of a CI job (one workflow's job in one repository). Pure. */
export function ciSubject(repoFullName: string, workflowPath: string, jobName: string): string {
  return `ci:${repoFullName}:${workflowPath}:${jobName}`.toLowerCase();
}

/** Make an entry: text redacted, cut to one short line. Pure. */
export function decisionEntry(
  kind: DecisionKind,
  text: string,
  now: Date,
  extra: { jobId?: string; pool?: string } = {},
): DecisionEntry {
  const line = redact(text).replace(/\s+/g, " ").trim();
  return {
    at: now.toISOString(),
    kind,
    text: line.length > 480 ? `${line.slice(0, 479)}…` : line,
    ...(extra.jobId ? { jobId: extra.jobId } : {}),
    ...(extra.pool ? { pool: extra.pool } : {}),
  };
}

export class DecisionLog {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(kind: "why" | "why-links", subject: string): string {
    return [this.prefix, "web", kind, subject].join(":");
  }

  async record(subject: string, entry: DecisionEntry): Promise<void> {
    const key = this.#key("why", subject);
    const seq = await this.redis.incr([this.prefix, "web", "why-seq"].join(":"));
    await this.redis
      .multi()
      .lpush(key, JSON.stringify({ ...entry, seq }))
      .ltrim(key, 0, MAX_DECISIONS - 1)
      .expire(key, TTL_SECONDS)
      .exec();
  }

  /** Show `other`'s decisions when `why` is asked on `subject` (a tracking issue and its CI job). */
  async link(subject: string, other: string): Promise<void> {
    if (subject === other) return;
    const key = this.#key("why-links", subject);
    await this.redis.multi().sadd(key, other).expire(key, TTL_SECONDS).exec();
  }

  /** The subject's decisions and its linked subjects', oldest first, at most `limit`. */
  async list(subject: string, limit = MAX_DECISIONS): Promise<DecisionEntry[]> {
    const linked = (await this.redis.smembers(this.#key("why-links", subject))).slice(0, 10);
    const lists = await Promise.all(
      [subject, ...linked].map((s) => this.redis.lrange(this.#key("why", s), 0, MAX_DECISIONS - 1)),
    );
    const out: DecisionEntry[] = [];
    for (const raw of lists.flat()) {
      try {
        const parsed = decisionEntrySchema.safeParse(JSON.parse(raw));
        if (parsed.success) out.push(parsed.data);
      } catch {
        // a damaged entry is skipped, never shown raw
      }
    }
    out.sort((a, b) => a.at.localeCompare(b.at) || (a.seq ?? 0) - (b.seq ?? 0));
    return out.slice(-limit);
  }
}

const KIND_LABEL: Record<DecisionKind, string> = {
  trigger: "trigger",
  streak: "streak",
  infra: "infra",
  permission: "permission",
  config: "config",
  dedup: "dedup",
  "loop-breaker": "loop breaker",
  people: "people's work",
  job: "job",
  "ci-on-fix": "CI on the fix",
};

/**
 * The answer to `/autofix why`: the recorded decisions as a short list, newest last, plus the
 * last job's state when known. Pure; the text is redacted again on the way out (reply()).
 */
export function renderWhy(
  entries: readonly DecisionEntry[],
  lastJob?: { jobId: string; state: string; message?: string } | null,
): string {
  if (entries.length === 0 && !lastJob) {
    return "Autofix has recorded no decision for this issue or pull request: no trigger, command or CI streak reached it (or its records expired after 90 days).";
  }
  const lines = ["Why Autofix did (or did not) act here, from its recorded decisions (oldest first):", ""];
  for (const e of entries) {
    const when = e.at.replace("T", " ").replace(/\.\d+Z$/, "Z");
    // Recorded text is data (logins, test ids, check names): shown as text, nobody pinged, nothing linked.
    lines.push(`- ${when} · **${KIND_LABEL[e.kind]}**: ${modelText(e.text, { inline: true })}`);
  }
  if (lastJob) {
    lines.push(
      "",
      `Last job \`${lastJob.jobId}\`: ${lastJob.state}${lastJob.message ? ` (${lastJob.message.replace(/\s+/g, " ").slice(0, 200)})` : ""}.`,
    );
  }
  return lines.join("\n");
}

/** What a comment or label handler decided, as an entry; null for what is not worth keeping. Pure. */
export function handlerEntry(
  event: string,
  sender: string | undefined,
  record: { decision: string; detail?: string; jobId?: string; pool?: string },
  now: Date,
): DecisionEntry | null {
  const by = sender ? ` by @${sender}` : "";
  const what = event.startsWith("issue_comment") ? "`/autofix` comment" : "trigger label";
  const detail = record.detail ? ` (${record.detail})` : "";
  const extra = {
    ...(record.jobId ? { jobId: record.jobId } : {}),
    ...(record.pool ? { pool: record.pool } : {}),
  };
  switch (record.decision) {
    case "enqueued":
      return decisionEntry(
        "trigger",
        `${what}${by}: permission checked (write or better), job \`${record.jobId}\` queued${record.pool ? ` on pool ${record.pool}` : ""}`,
        now,
        extra,
      );
    case "duplicate":
      return decisionEntry(
        "dedup",
        `${what}${by}: a job for this is already queued or running (\`${record.jobId ?? "?"}\`); none added`,
        now,
        extra,
      );
    case "unauthorized":
      return decisionEntry("permission", `${what}${by}: refused, no write access${detail}`, now);
    case "bad-config":
      return decisionEntry("config", `${what}${by}: .github/autofix.yml is invalid; nothing ran`, now);
    case "invalid-command":
      return decisionEntry("trigger", `${what}${by}: not understood${detail}; nothing queued`, now);
    case "cancelled":
      return decisionEntry("job", `cancelled${by}${detail}`, now, extra);
    case "ignored":
      return record.detail?.includes("bot")
        ? decisionEntry("permission", `${what}${by} ignored${detail}`, now)
        : null;
    default:
      return null;
  }
}

/**
 * `/autofix why` on a target: its recorded decisions (and its CI job's, for a tracking issue),
 * then where the last job stands, read from its queue (waiting, running, or how it ended).
 */
export async function answerWhy(
  deps: { decisions: DecisionLog; queues: Pick<JobQueues, "queue"> },
  target: { owner: string; repo: string; number: number },
): Promise<string> {
  const entries = await deps.decisions.list(targetSubject(target));
  const last = [...entries].reverse().find((e) => e.jobId && e.pool);
  let lastJob: { jobId: string; state: string; message?: string } | null = null;
  if (last?.jobId && last.pool) {
    try {
      const job = await deps.queues.queue(last.pool).getJob(last.jobId);
      if (job) {
        const state = await job.getState();
        const rv = job.returnvalue as { state?: unknown; message?: unknown } | null | undefined;
        const ended = typeof rv?.state === "string" ? rv.state : null;
        lastJob = {
          jobId: last.jobId,
          state:
            state === "active"
              ? "running"
              : state === "completed" && ended
                ? ended
                : state === "failed"
                  ? `failed (${job.failedReason?.split("\n")[0] ?? "error"})`
                  : state,
          ...(typeof rv?.message === "string" ? { message: rv.message } : {}),
        };
      } else {
        lastJob = {
          jobId: last.jobId,
          state: "no longer in the queue (finished jobs are kept 7 days, failed ones 30)",
        };
      }
    } catch {
      lastJob = null;
    }
  }
  return renderWhy(entries, lastJob);
}
