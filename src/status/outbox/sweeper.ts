import type { JobQueues } from "../../queue/queues.js";
import type { Logger } from "../../shared/logger.js";
import type { StatusStep, StatusView } from "../model.js";
import { type CommentLocation, locationKey } from "./location.js";
import type { OpenEntry, Outbox } from "./outbox.js";

/**
 * The BullMQ state of a job, or null when the queue has no such job. The web process passes
 * one over its JobQueues; tests pass their own.
 */
export type JobStateLookup = (pool: string, jobId: string) => Promise<string | null>;

/** The lookup over the pools' queues (an unknown pool counts as a missing job). */
export function queueJobState(queues: Pick<JobQueues, "queue">): JobStateLookup {
  return async (pool, jobId) => {
    let q: ReturnType<JobQueues["queue"]>;
    try {
      q = queues.queue(pool);
    } catch {
      return null;
    }
    const state = await q.getJobState(jobId);
    return state === "unknown" ? null : state;
  };
}

/** BullMQ states after which no worker will write the job's status again. */
const ENDED = new Set(["completed", "failed"]);

/** How long a job that ended may keep a non-final comment before the sweeper says so (its final view may be in flight). */
export const ENDED_GRACE_MS = 10 * 60_000;

/** The message of a status whose job is gone. Pure. */
export function lostMessage(loc: CommentLocation, why: "missing" | "ended"): string {
  const reason =
    why === "missing"
      ? "Its record is gone from the queue (Redis lost it, or it was removed), so no worker will run it."
      : "It ended without reporting a final state (its worker was lost), so this comment was not updated.";
  const again =
    loc.kind === "issue"
      ? "Comment `/autofix retry` to start it again."
      : "Push again, or comment `/autofix` on a pull request, to start it again.";
  return `This job was lost. ${reason} ${again}`;
}

/** The final view the sweeper writes for a lost job: the last view, failed, with the reason. Pure. */
export function lostView(entry: OpenEntry, why: "missing" | "ended", now: Date): StatusView {
  const { queuePosition: _q, ...last } = entry.view;
  const steps: StatusStep[] | undefined = last.steps?.map((s) =>
    s.state === "running" ? { ...s, state: "failed" } : s,
  );
  return {
    ...last,
    state: "failed",
    ...(steps ? { steps } : {}),
    message: lostMessage(entry.loc, why),
    updatedAt: now,
  };
}

export interface OutboxSweeperOptions {
  outbox: Outbox;
  jobState: JobStateLookup;
  log?: Logger;
  now?: () => number;
  intervalMs?: number;
  endedGraceMs?: number;
}

/**
 * Reconciles status comments whose job no longer exists (web process). Its index is the
 * outbox's `open` hash (non-final locations -> job, pool, last view), plus an in-process copy
 * of every non-final view this process wrote, so a Redis restart without persistence (index
 * and queues gone) is still reconciled by a web process that was running at the time.
 */
export class OutboxSweeper {
  #local = new Map<string, OpenEntry>();
  #off: () => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | null = null;
  readonly #now: () => number;

  constructor(private readonly opts: OutboxSweeperOptions) {
    this.#now = opts.now ?? Date.now;
    this.#off = opts.outbox.onStatus((key, entry) => {
      if (entry) this.#local.set(key, entry);
      else this.#local.delete(key);
    });
  }

  /** Locations this process remembers as not final. */
  get remembered(): number {
    return this.#local.size;
  }

  start(): void {
    if (this.#timer) return;
    const every = this.opts.intervalMs ?? 60_000;
    this.#timer = setInterval(() => {
      this.sweep().catch((err) => this.opts.log?.warn({ err }, "outbox sweep failed; next time"));
    }, every);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#off();
    await this.#running?.catch(() => 0);
  }

  /** One pass; returns how many comments it set to "lost". */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #sweep(): Promise<number> {
    const { outbox } = this.opts;
    const indexed = await outbox.openEntries();
    const entries = new Map(indexed);
    for (const [key, e] of this.#local) {
      if (indexed.has(key)) continue;
      // Not in Redis's index: finished elsewhere (then the slot says so), or Redis lost it.
      const slot = await outbox.readStatus(key);
      if (slot && (slot.rank >= 2 || slot.jobId !== e.jobId)) this.#local.delete(key);
      else entries.set(key, e);
    }
    for (const [key, e] of indexed) this.#local.set(key, e);
    let lost = 0;
    for (const [key, e] of entries) {
      if (!e.pool) continue;
      const state = await this.opts.jobState(e.pool, e.jobId);
      let why: "missing" | "ended" | null = null;
      if (state === null) why = "missing";
      else if (
        ENDED.has(state) &&
        this.#now() - e.view.updatedAt.getTime() > (this.opts.endedGraceMs ?? ENDED_GRACE_MS)
      )
        why = "ended";
      if (!why) continue;
      const r = await outbox.status(
        e.loc,
        e.installationId,
        lostView(e, why, new Date(this.#now())),
        {
          jobId: e.jobId,
          pool: e.pool,
        },
        { ifCurrent: { jobId: e.jobId, updatedAt: e.view.updatedAt.getTime() } },
      );
      this.#local.delete(key);
      if (r === "queued") {
        lost++;
        this.opts.log?.warn(
          { location: locationKey(e.loc), jobId: e.jobId, pool: e.pool, why },
          "status comment of a lost job set to failed",
        );
      }
    }
    return lost;
  }
}
