import { randomBytes } from "node:crypto";
import type { ProbotOctokit } from "probot";
import type { Logger } from "../../shared/logger.js";
import { redact } from "../../shared/redact.js";
import {
  backoffMs,
  classifyFailure,
  type FailureDecision,
  postReply,
  writeStatusComment,
} from "./github-writes.js";
import { locationKey } from "./location.js";
import {
  type LaneItem,
  type Outbox,
  PRIORITIES,
  type Priority,
  parseMember,
  replyIdMarker,
} from "./outbox.js";

/** GitHub's documented limit on content creation: 80 a minute (one every 750 ms). */
export const CONTENT_INTERVAL_MS = 750;
/** Other writes (edits, PR updates): a few a second per installation. */
export const WRITE_INTERVAL_MS = 334;
/** A reply or reaction GitHub still refuses after this long is dropped (status views never are). */
export const ITEM_MAX_AGE_MS = 24 * 3600_000;

export interface OutboxDrainerOptions {
  outbox: Outbox;
  /** An Octokit per installation with Octokit's own throttle off (see drainerOctokits). */
  octokitFor: (installationId: number) => Promise<ProbotOctokit>;
  log?: Logger;
  /** ms now: pacing, due times and pauses use it (tests inject a clock). */
  now?: () => number;
  /** Waits `ms` or until woken (tests may advance a fake clock here). */
  sleep?: (ms: number, wake: AbortSignal) => Promise<void>;
  /** Longest idle wait between looks at the outbox (writes of other processes are seen then). */
  pollMs?: number;
  rate?: { writeMs?: number; contentMs?: number };
  backoff?: { baseMs?: number; maxMs?: number };
  lockTtlMs?: number;
  requestTimeoutMs?: number;
}

interface LanePick {
  priority: Priority;
  member: string;
  lane: string;
  installationId: number;
}

function realSleep(ms: number, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake.removeEventListener("abort", done);
      resolve();
    }
    wake.addEventListener("abort", done, { once: true });
  });
}

/**
 * Delivers the outbox to GitHub. Runs in every process with GitHub credentials; lanes are
 * claimed with a Redis lock, so one process writes a location at a time, and writes are paced
 * per installation through Redis, so all processes together stay under GitHub's limits.
 */
export class OutboxDrainer {
  readonly #o: Required<Pick<OutboxDrainerOptions, "pollMs" | "lockTtlMs" | "requestTimeoutMs">>;
  readonly #outbox: Outbox;
  readonly #now: () => number;
  readonly #sleep: (ms: number, wake: AbortSignal) => Promise<void>;
  readonly #rate: { writeMs: number; contentMs: number };
  readonly #backoff: { baseMs: number; maxMs: number };
  readonly #token = randomBytes(8).toString("hex");
  #octokits = new Map<number, { at: number; octokit: Promise<ProbotOctokit> }>();
  #wake = new AbortController();
  #loop: Promise<void> | null = null;
  #stopped = false;
  #offWake: (() => void) | null = null;
  /** Since when writes have been failing (for the catch-up log line), and how many were late. */
  #troubleSince: number | null = null;
  #lateDeliveries = 0;
  #redisDown = false;
  /** Installations this process must not write for until then (their pacing slot, a pause). */
  #blocked = new Map<number, number>();
  delivered = 0;

  constructor(private readonly opts: OutboxDrainerOptions) {
    this.#outbox = opts.outbox;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? realSleep;
    this.#o = {
      pollMs: opts.pollMs ?? 500,
      lockTtlMs: opts.lockTtlMs ?? 90_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 15_000,
    };
    this.#rate = {
      writeMs: opts.rate?.writeMs ?? WRITE_INTERVAL_MS,
      contentMs: opts.rate?.contentMs ?? CONTENT_INTERVAL_MS,
    };
    this.#backoff = { baseMs: opts.backoff?.baseMs ?? 1_000, maxMs: opts.backoff?.maxMs ?? 60_000 };
  }

  start(): void {
    if (this.#loop) return;
    this.#stopped = false;
    this.#offWake = this.#outbox.onEnqueue(() => this.#kick());
    this.#loop = this.#run();
  }

  /**
   * Wait (at most `ms` of real time) until nothing in the outbox is left to deliver, while the
   * loop keeps delivering: a worker that shuts down gets its last views out first. Resolves
   * true when the outbox is empty, false when time ran out (another process delivers the rest).
   */
  async flush(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      const next = await this.#outbox.nextDue().catch(() => 0);
      if (next === null) return true;
      if (Date.now() >= end) return false;
      this.#kick();
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stop after the writes in flight (they are finished, never cut off half way). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#offWake?.();
    this.#kick();
    await this.#loop;
    this.#loop = null;
  }

  #kick(): void {
    this.#wake.abort();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#wake = new AbortController();
      let served = 0;
      try {
        served = await this.drainOnce();
        if (this.#redisDown) this.opts.log?.info("outbox: Redis answers again; delivering");
        this.#redisDown = false;
      } catch (err) {
        if (!this.#redisDown)
          this.opts.log?.warn({ err }, "outbox: could not read Redis; GitHub writes wait until it answers");
        this.#redisDown = true;
      }
      if (this.#stopped) break;
      if (served > 0) continue;
      let wait = this.#o.pollMs;
      try {
        const next = await this.#outbox.nextDue();
        const now = this.#now();
        if (next === null) this.#caughtUp();
        else if (next > now) wait = Math.min(wait, next - now);
        else {
          // Due lanes wait for their installation's next slot (or another process holds them).
          const free = Math.min(...[...this.#blocked.values()].filter((u) => u > now));
          if (Number.isFinite(free)) wait = Math.min(wait, free - now);
        }
      } catch {
        // Redis away: poll again later
      }
      await this.#sleep(Math.max(wait, 1), this.#wake.signal);
    }
  }

  #caughtUp(): void {
    if (this.#troubleSince === null) return;
    this.opts.log?.info(
      { outageMs: this.#now() - this.#troubleSince, lateWrites: this.#lateDeliveries },
      "outbox caught up: every GitHub write that waited has been delivered",
    );
    this.#troubleSince = null;
    this.#lateDeliveries = 0;
  }

  /**
   * One pass: at most one due lane per installation, status lanes first, served concurrently
   * across installations. Returns how many lanes it delivered something for.
   */
  async drainOnce(): Promise<number> {
    const now = this.#now();
    const picks = new Map<number, LanePick>();
    for (const priority of PRIORITIES) {
      for (const member of await this.#outbox.due(priority, now, 200)) {
        const m = parseMember(member);
        if (!m) {
          await this.#outbox.forget(priority, member);
          continue;
        }
        if ((this.#blocked.get(m.installationId) ?? 0) > now) continue;
        if (!picks.has(m.installationId)) picks.set(m.installationId, { priority, member, ...m });
      }
    }
    const results = await Promise.all([...picks.values()].map((p) => this.#serve(p)));
    return results.filter(Boolean).length;
  }

  async #serve(p: LanePick): Promise<boolean> {
    const now = this.#now();
    const paused = await this.#outbox.pausedUntil(p.installationId);
    if (paused > now) {
      this.#blocked.set(p.installationId, paused);
      return false;
    }
    if (!(await this.#outbox.lock(p.lane, this.#token, this.#o.lockTtlMs))) return false;
    try {
      return p.lane.startsWith("s:") ? await this.#serveStatus(p, now) : await this.#serveItem(p, now);
    } finally {
      await this.#outbox.unlock(p.lane, this.#token).catch(() => {});
    }
  }

  async #pace(p: LanePick, now: number, content: boolean): Promise<boolean> {
    const wait = await this.#outbox.takeRate(p.installationId, now, content, this.#rate);
    // The lane stays due (oldest first); the installation waits for its slot.
    if (wait > 0) this.#blocked.set(p.installationId, now + wait);
    else this.#blocked.delete(p.installationId);
    return wait === 0;
  }

  async #serveStatus(p: LanePick, now: number): Promise<boolean> {
    const slot = await this.#outbox.readStatus(p.lane.slice(2));
    if (!slot) {
      await this.#outbox.forget(p.priority, p.member);
      return false;
    }
    if (slot.seq <= slot.written) {
      await this.#outbox.ackStatus(slot.loc, p.member, slot.seq, now);
      return false;
    }
    const known = await this.#outbox.commentIdOf(slot.loc);
    if (!(await this.#pace(p, now, known === null))) return false;
    try {
      const octokit = await this.#octokit(p.installationId);
      const { id, created } = await writeStatusComment(
        octokit,
        slot.loc,
        slot.body,
        known,
        AbortSignal.timeout(this.#o.requestTimeoutMs),
        {
          onGone: (gone) => this.#outbox.forgetCommentId(slot.loc, gone),
          onFound: (found) => this.#outbox.recordCommentId(slot.loc, found),
        },
      );
      if (created)
        this.opts.log?.info(
          { location: locationKey(slot.loc), commentId: id, jobId: slot.jobId || undefined },
          "status comment created",
        );
      await this.#outbox.ackStatus(slot.loc, p.member, slot.seq, this.#now());
      this.#delivered();
      return true;
    } catch (err) {
      await this.#failed(p, err, now, { what: "status comment", location: locationKey(slot.loc) }, () =>
        this.#outbox.ackStatus(slot.loc, p.member, slot.seq, this.#now()).then(() => {}),
      );
      return false;
    }
  }

  async #serveItem(p: LanePick, now: number): Promise<boolean> {
    const head = await this.#outbox.head(p.lane);
    if (!head) {
      await this.#outbox.forget(p.priority, p.member);
      return false;
    }
    const item = head.item;
    const drop = () => this.#outbox.ackItem(p.priority, p.member, p.lane, head.raw, this.#now());
    if (item.kind === "request" && !item.route) {
      this.opts.log?.error({ lane: p.lane }, "outbox: unreadable item dropped");
      await drop();
      return false;
    }
    if (!(await this.#pace(p, now, item.kind !== "request"))) return false;
    try {
      const octokit = await this.#octokit(p.installationId);
      await this.#deliver(octokit, p, item);
      await drop();
      this.#delivered();
      return true;
    } catch (err) {
      await this.#failed(p, err, now, { what: item.kind, lane: p.lane }, drop, item.at);
      return false;
    }
  }

  async #deliver(octokit: ProbotOctokit, p: LanePick, item: LaneItem): Promise<void> {
    const signal = AbortSignal.timeout(this.#o.requestTimeoutMs);
    switch (item.kind) {
      case "reply": {
        // Only after a failed attempt can GitHub already have it (a 502 after the create).
        const marker = item.id && (await this.#outbox.tries(p.lane)) > 0 ? replyIdMarker(item.id) : null;
        await postReply(octokit, item.loc, item.body, marker, signal);
        return;
      }
      case "react":
        await octokit.rest.reactions.createForIssueComment({
          owner: item.repo.owner,
          repo: item.repo.repo,
          comment_id: item.commentId,
          content: item.content,
          request: { signal },
        });
        return;
      case "request":
        await octokit.request(item.route, { ...item.params, request: { signal } });
        return;
    }
  }

  async #failed(
    p: LanePick,
    err: unknown,
    now: number,
    what: Record<string, unknown>,
    drop: () => Promise<void>,
    enqueuedAt?: number,
  ): Promise<void> {
    let d: FailureDecision = classifyFailure(err, this.#now());
    if (d.kind === "retry" && enqueuedAt !== undefined && now - enqueuedAt > ITEM_MAX_AGE_MS)
      d = { kind: "drop", reason: `${d.reason}; given up after 24 h` };
    if ((err as { status?: number }).status === 401) this.#octokits.delete(p.installationId);
    if (d.kind === "drop") {
      this.opts.log?.error(
        { ...what, installationId: p.installationId, reason: redact(d.reason) },
        "outbox: GitHub refused a write that can never succeed; dropped",
      );
      await drop();
      return;
    }
    this.#troubleSince ??= now;
    if (d.kind === "pause") {
      await this.#outbox.pause(p.installationId, d.untilMs);
      this.#blocked.set(p.installationId, d.untilMs);
      this.opts.log?.warn(
        { ...what, installationId: p.installationId, untilMs: d.untilMs, reason: d.reason },
        "outbox: GitHub asked to slow down; pausing this installation's writes",
      );
      return;
    }
    const tries = await this.#outbox.failed(p.lane);
    const wait = backoffMs(tries, this.#backoff.baseMs, this.#backoff.maxMs);
    await this.#outbox.reschedule(p.priority, p.member, this.#now() + wait);
    this.opts.log?.warn(
      { ...what, installationId: p.installationId, tries, retryInMs: wait, reason: redact(d.reason) },
      "outbox: GitHub write failed; retrying",
    );
  }

  #delivered(): void {
    this.delivered++;
    if (this.#troubleSince !== null) this.#lateDeliveries++;
  }

  #octokit(installationId: number): Promise<ProbotOctokit> {
    const cached = this.#octokits.get(installationId);
    if (cached && this.#now() - cached.at < 10 * 60_000) return cached.octokit;
    const octokit = this.opts.octokitFor(installationId);
    this.#octokits.set(installationId, { at: this.#now(), octokit });
    octokit.catch(() => this.#octokits.delete(installationId));
    return octokit;
  }
}
