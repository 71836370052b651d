import type { Redis } from "ioredis";
import { redact } from "../../shared/redact.js";
import { isFinal, type JobState, type StatusView } from "../model.js";
import { renderStatus } from "../render.js";
import { type CommentLocation, locationKey, parseLocation } from "./location.js";

/**
 * The durable outbox of GitHub writes (issue 16). Every write a process wants GitHub to see
 * (status comments, replies, reactions, other idempotent writes such as a PR edit) is put in
 * Redis first; an OutboxDrainer in any process with GitHub credentials delivers it later, at
 * the rate GitHub allows per installation, retrying until GitHub accepts it.
 *
 * Writes are grouped in lanes. A lane is written by one process at a time (a Redis lock), in
 * order, and lanes are served by priority: status comments (0) before replies (1) before
 * reactions (2). A status lane is one slot per comment location: only the newest view is
 * kept, so a burst of progress is one edit, and an older view never replaces a newer one.
 *
 * Keys (all under `<prefix>:outbox:`, so a hash-tagged prefix keeps them in one cluster slot):
 *   ready:<p>        sorted set of lanes with something to deliver, score = when it is due (ms)
 *   since            sorted set of the same lanes, score = since when they wait (ms; metrics)
 *   status:<loc>     hash: the newest view of a location (body, updatedAt, rank, jobId, seq, written)
 *   cid:<loc>        the status comment's id at that location, once known
 *   list:<lane>      the FIFO items of a reply, reaction or request lane
 *   id:<id>          idempotency ids already accepted
 *   open             hash: non-final status locations -> job, pool, last view (the sweeper's index)
 *   lock:<lane>      who writes the lane now
 *   pause:<inst>     until when GitHub asked us to stop writing for an installation (ms)
 *   rate:<inst>:<k>  the next time a write (k=w) or a content creation (k=c) may start (ms)
 *   tries:<lane>     failed attempts on the lane's head (for the backoff)
 */

/** Reactions GitHub accepts on an issue comment. */
export type ReactionContent = "+1" | "-1" | "laugh" | "confused" | "heart" | "hooray" | "rocket" | "eyes";

/** Lane priorities: lower first. */
export const PRIORITY = { status: 0, reply: 1, reaction: 2 } as const;
export const PRIORITIES = [0, 1, 2] as const;
export type Priority = (typeof PRIORITIES)[number];

/** How long idempotency ids, status slots and comment ids are remembered. */
export const ID_TTL_SECONDS = 7 * 24 * 3600;
export const STATUS_TTL_SECONDS = 30 * 24 * 3600;

/**
 * What a status slot says about the job. Views are ordered by their time (updatedAt); besides,
 * a final view is never replaced by a non-final one of the same job (a late progress write).
 * A queued view after a running one of the same job is legitimate: the job went back to the
 * queue (a retry, a shutdown hand-over).
 */
export function stateRank(state: JobState): 0 | 1 | 2 {
  if (state === "queued") return 0;
  if (state === "running") return 1;
  return 2;
}

/** Items of the FIFO lanes, as stored (JSON). */
export type LaneItem =
  | { kind: "reply"; id?: string; loc: CommentLocation; body: string; at: number }
  | {
      kind: "react";
      repo: { owner: string; repo: string };
      commentId: number;
      content: ReactionContent;
      at: number;
    }
  | { kind: "request"; id?: string; route: string; params: Record<string, unknown>; at: number };

/** A location whose status is not final yet: what the sweeper checks. */
export interface OpenEntry {
  loc: CommentLocation;
  installationId: number;
  jobId: string;
  pool?: string;
  view: StatusView;
}

export interface StatusMeta {
  jobId: string | undefined;
  pool?: string;
}

/** The state of a status slot, as the drainer reads it. */
export interface StatusSlot {
  loc: CommentLocation;
  installationId: number;
  body: string;
  seq: number;
  written: number;
  jobId: string;
  rank: number;
  updatedAt: number;
}

export interface OutboxDepth {
  /** Lanes with something to deliver, per priority (a status location counts once however many views it got). */
  pending: Record<"status" | "reply" | "reaction", number>;
  /** Age of the oldest undelivered lane in seconds (0 when the outbox is empty). */
  oldestSeconds: number;
}

/** Told about every status view the outbox accepted in this process (the sweeper's in-process copy). */
export type StatusListener = (key: string, entry: OpenEntry | null) => void;

const STATUS_LUA = `
local cur = redis.call('HMGET', KEYS[1], 'updatedAt', 'rank', 'jobId')
if ARGV[12] ~= '' and cur[1] then
  if cur[3] ~= ARGV[12] or cur[1] ~= ARGV[13] or tonumber(cur[2]) >= 2 then return -1 end
end
if cur[1] then
  local u, r = tonumber(cur[1]), tonumber(cur[2])
  local nu, nr = tonumber(ARGV[2]), tonumber(ARGV[3])
  if cur[3] and cur[3] ~= '' and cur[3] == ARGV[4] and r >= 2 and nr < 2 then
    return -1
  elseif nu < u then
    return -1
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'updatedAt', ARGV[2], 'rank', ARGV[3], 'jobId', ARGV[4], 'inst', ARGV[5], 'loc', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[11])
redis.call('ZADD', KEYS[2], 'NX', ARGV[7], ARGV[8])
redis.call('ZADD', KEYS[3], 'NX', ARGV[7], ARGV[8])
if ARGV[9] == '' then redis.call('HDEL', KEYS[4], ARGV[10]) else redis.call('HSET', KEYS[4], ARGV[10], ARGV[9]) end
return seq
`;

const ACK_STATUS_LUA = `
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local done = tonumber(ARGV[1])
local written = tonumber(redis.call('HGET', KEYS[1], 'written') or '0')
if done > written and seq > 0 then redis.call('HSET', KEYS[1], 'written', ARGV[1]) end
redis.call('DEL', KEYS[4])
if seq <= done then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 0
`;

const PUSH_LUA = `
if ARGV[1] ~= '' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], 'NX', ARGV[4], ARGV[3])
return 1
`;

const ACK_ITEM_LUA = `
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
redis.call('DEL', KEYS[4])
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local ok, item = pcall(cjson.decode, head)
if ok and type(item) == 'table' and item.at then redis.call('ZADD', KEYS[3], 'XX', item.at, ARGV[2]) end
return 1
`;

const UNLOCK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const RATE_LUA = `
local now = tonumber(ARGV[1])
local w = tonumber(redis.call('GET', KEYS[1]) or '0')
local wait = w - now
if ARGV[4] == '1' then
  local c = tonumber(redis.call('GET', KEYS[2]) or '0')
  if c - now > wait then wait = c - now end
end
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tostring(now + tonumber(ARGV[2])), 'EX', 3600)
if ARGV[4] == '1' then redis.call('SET', KEYS[2], tostring(now + tonumber(ARGV[3])), 'EX', 3600) end
return 0
`;

/** A lane's member in the ready sets: `<installation>|<lane>`. */
export function laneMember(installationId: number, lane: string): string {
  return `${installationId}|${lane}`;
}

export function parseMember(member: string): { installationId: number; lane: string } | null {
  const bar = member.indexOf("|");
  if (bar <= 0) return null;
  const installationId = Number(member.slice(0, bar));
  if (!Number.isSafeInteger(installationId) || installationId <= 0) return null;
  return { installationId, lane: member.slice(bar + 1) };
}

/** Lane names: `s:<loc>` status, `r:<loc>` replies, `x:<owner>/<repo>` reactions, `q:<name>` requests. */
export const statusLane = (loc: CommentLocation) => `s:${locationKey(loc)}`;
const replyLane = (loc: CommentLocation) => `r:${locationKey(loc)}`;
const reactLane = (repo: { owner: string; repo: string }) => `x:${repo.owner}/${repo.repo}`;
const requestLane = (name: string) => `q:${name}`;

/** The hidden line that makes a reply findable again after an answer that was lost (id-ed replies). */
export function replyIdMarker(id: string): string {
  return `<!-- autofix:outbox ${id.replace(/[^A-Za-z0-9_.:-]/g, "_")} -->`;
}

function reviveView(raw: unknown): StatusView | null {
  if (!raw || typeof raw !== "object") return null;
  const v = raw as StatusView & { updatedAt: string };
  const at = new Date(v.updatedAt);
  if (typeof v.state !== "string" || typeof v.target !== "string" || Number.isNaN(at.getTime())) return null;
  return { ...v, updatedAt: at };
}

/**
 * In-process listeners per prefix: every Outbox of this process over the same prefix shares
 * them, so a drainer wakes and the sweeper learns of a write whichever instance took it.
 */
const WAKE = new Map<string, Set<() => void>>();
const STATUS_LISTENERS = new Map<string, Set<StatusListener>>();
function listeners<T>(map: Map<string, Set<T>>, prefix: string): Set<T> {
  let set = map.get(prefix);
  if (!set) {
    set = new Set();
    map.set(prefix, set);
  }
  return set;
}

export class Outbox {
  readonly redis: Redis;
  readonly prefix: string;
  readonly #now: () => number;
  readonly #wake: Set<() => void>;
  readonly #statusListeners: Set<StatusListener>;

  constructor(opts: { redis: Redis; prefix: string; now?: () => number }) {
    this.redis = opts.redis;
    this.prefix = opts.prefix;
    this.#now = opts.now ?? Date.now;
    this.#wake = listeners(WAKE, opts.prefix);
    this.#statusListeners = listeners(STATUS_LISTENERS, opts.prefix);
  }

  /** A key of the outbox. */
  key(...parts: Array<string | number>): string {
    return [`${this.prefix}:outbox`, ...parts].join(":");
  }

  /**
   * Make `view` what the location's status comment shows. Resolves once the view is durably
   * in Redis (`queued`), or when a newer view is already there (`stale`: the older one is
   * dropped). Rejects when Redis did not take it.
   *
   * `ifCurrent` (the sweeper): only when the slot still shows that job's non-final view of
   * that time (or Redis lost the slot), so a final view written meanwhile is never replaced.
   */
  async status(
    loc: CommentLocation,
    installationId: number,
    view: StatusView,
    meta: StatusMeta,
    opts: { ifCurrent?: { jobId: string; updatedAt: number } } = {},
  ): Promise<"queued" | "stale"> {
    const key = locationKey(loc);
    const lane = statusLane(loc);
    const member = laneMember(installationId, lane);
    const final = isFinal(view.state);
    const jobId = meta.jobId ?? view.jobId ?? "";
    const entry: OpenEntry | null =
      final || !jobId
        ? null
        : { loc, installationId, jobId, ...(meta.pool ? { pool: meta.pool } : {}), view };
    const r = await this.redis.eval(
      STATUS_LUA,
      4,
      this.key("status", key),
      this.key("ready", PRIORITY.status),
      this.key("since"),
      this.key("open"),
      renderStatus(view),
      String(view.updatedAt.getTime()),
      String(stateRank(view.state)),
      jobId,
      String(installationId),
      JSON.stringify(loc),
      String(this.#now()),
      member,
      entry ? JSON.stringify(entry) : "",
      key,
      String(STATUS_TTL_SECONDS),
      opts.ifCurrent?.jobId ?? "",
      opts.ifCurrent ? String(opts.ifCurrent.updatedAt) : "",
    );
    if (Number(r) < 0) return "stale";
    for (const l of this.#statusListeners) l(key, entry);
    this.#notify();
    return "queued";
  }

  /**
   * A new comment at the location (a reply), after the redactor. With an id it is written at
   * most once per id: false when that id was accepted before (a redelivered webhook).
   */
  async reply(
    loc: CommentLocation,
    installationId: number,
    body: string,
    opts: { id?: string } = {},
  ): Promise<boolean> {
    const text = redact(body);
    return this.#push(PRIORITY.reply, installationId, replyLane(loc), opts.id, {
      kind: "reply",
      ...(opts.id ? { id: opts.id } : {}),
      loc,
      body: opts.id ? `${text}\n${replyIdMarker(opts.id)}` : text,
      at: this.#now(),
    });
  }

  /** A reaction on an issue comment: the lowest priority (GitHub answers a repeat with 200). */
  async react(
    repo: { owner: string; repo: string },
    installationId: number,
    commentId: number,
    content: ReactionContent,
  ): Promise<void> {
    await this.#push(PRIORITY.reaction, installationId, reactLane(repo), undefined, {
      kind: "react",
      repo: { owner: repo.owner, repo: repo.repo },
      commentId,
      content,
      at: this.#now(),
    });
  }

  /**
   * A generic idempotent write (`PATCH /repos/{owner}/{repo}/pulls/{pull_number}`, ...),
   * delivered in order within `lane`. String params are redacted. With an id, at most once per id.
   */
  async request(
    installationId: number,
    lane: string,
    route: string,
    params: Record<string, unknown>,
    opts: { id?: string; priority?: Priority } = {},
  ): Promise<boolean> {
    const clean = Object.fromEntries(
      Object.entries(params).map(([k, v]) => [k, typeof v === "string" ? redact(v) : v]),
    );
    return this.#push(opts.priority ?? PRIORITY.reply, installationId, requestLane(lane), opts.id, {
      kind: "request",
      ...(opts.id ? { id: opts.id } : {}),
      route,
      params: clean,
      at: this.#now(),
    });
  }

  async #push(
    priority: Priority,
    installationId: number,
    lane: string,
    id: string | undefined,
    item: LaneItem,
  ): Promise<boolean> {
    const r = await this.redis.eval(
      PUSH_LUA,
      4,
      this.key("id", id ?? "-"),
      this.key("list", lane),
      this.key("ready", priority),
      this.key("since"),
      id ?? "",
      JSON.stringify(item),
      laneMember(installationId, lane),
      String(this.#now()),
      String(ID_TTL_SECONDS),
    );
    if (Number(r) === 1) this.#notify();
    return Number(r) === 1;
  }

  /** The status comment id recorded for a location (null when none is known yet). */
  async commentIdOf(loc: CommentLocation): Promise<number | null> {
    const v = Number(await this.redis.get(this.key("cid", locationKey(loc))));
    return Number.isSafeInteger(v) && v > 0 ? v : null;
  }

  /** What the outbox holds, for /metrics and `autofix status`. */
  async depth(): Promise<OutboxDepth> {
    const [s, r, x, oldest] = await Promise.all([
      this.redis.zcard(this.key("ready", 0)),
      this.redis.zcard(this.key("ready", 1)),
      this.redis.zcard(this.key("ready", 2)),
      this.redis.zrange(this.key("since"), "0", "0", "WITHSCORES"),
    ]);
    const first = oldest[1] !== undefined ? Number(oldest[1]) : null;
    return {
      pending: { status: s, reply: r, reaction: x },
      oldestSeconds: first === null ? 0 : Math.max(0, (this.#now() - first) / 1000),
    };
  }

  /** Non-final status locations recorded in Redis (the sweeper's index). */
  async openEntries(): Promise<Map<string, OpenEntry>> {
    const raw = await this.redis.hgetall(this.key("open"));
    const out = new Map<string, OpenEntry>();
    for (const [key, json] of Object.entries(raw)) {
      const e = parseOpenEntry(json);
      if (e) out.set(key, e);
    }
    return out;
  }

  /** The slot of a location (null when Redis has none). */
  async readStatus(loc: CommentLocation | string): Promise<StatusSlot | null> {
    const key = typeof loc === "string" ? loc : locationKey(loc);
    const h = await this.redis.hgetall(this.key("status", key));
    return parseSlot(h);
  }

  /** Called after every accepted write of this process (drainers wake up at once). */
  onEnqueue(listener: () => void): () => void {
    this.#wake.add(listener);
    return () => this.#wake.delete(listener);
  }

  /** Called after every status view this process put in the outbox. */
  onStatus(listener: StatusListener): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  #notify(): void {
    for (const w of this.#wake) w();
  }

  // ---- the drain side (OutboxDrainer) ----

  /** Due lanes of a priority, oldest due first. */
  async due(priority: Priority, now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.key("ready", priority), "-inf", now, "LIMIT", 0, limit);
  }

  /** When the next lane is due (ms), or null when nothing waits. */
  async nextDue(): Promise<number | null> {
    const heads = await Promise.all(
      PRIORITIES.map((p) => this.redis.zrange(this.key("ready", p), "0", "0", "WITHSCORES")),
    );
    let min: number | null = null;
    for (const h of heads) if (h[1] !== undefined) min = Math.min(min ?? Infinity, Number(h[1]));
    return min;
  }

  async lock(lane: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.key("lock", lane), token, "PX", ttlMs, "NX")) === "OK";
  }

  async unlock(lane: string, token: string): Promise<void> {
    await this.redis.eval(UNLOCK_LUA, 1, this.key("lock", lane), token);
  }

  async head(lane: string): Promise<{ raw: string; item: LaneItem } | null> {
    const raw = await this.redis.lindex(this.key("list", lane), 0);
    if (raw === null) return null;
    try {
      return { raw, item: JSON.parse(raw) as LaneItem };
    } catch {
      return { raw, item: { kind: "request", route: "", params: {}, at: 0 } };
    }
  }

  /** The head item was delivered (or dropped): pop it; the lane stays due when more waits. */
  async ackItem(priority: Priority, member: string, lane: string, raw: string, now: number): Promise<void> {
    await this.redis.eval(
      ACK_ITEM_LUA,
      4,
      this.key("list", lane),
      this.key("ready", priority),
      this.key("since"),
      this.key("tries", lane),
      raw,
      member,
      String(now),
    );
  }

  /** The slot's view `seq` was delivered (or dropped): done unless a newer view came meanwhile. */
  async ackStatus(loc: CommentLocation, member: string, seq: number, now: number): Promise<boolean> {
    const r = await this.redis.eval(
      ACK_STATUS_LUA,
      4,
      this.key("status", locationKey(loc)),
      this.key("ready", PRIORITY.status),
      this.key("since"),
      this.key("tries", statusLane(loc)),
      String(seq),
      member,
      String(now),
    );
    return Number(r) === 1;
  }

  /** Drop a lane that has nothing left (a status slot that expired). */
  async forget(priority: Priority, member: string): Promise<void> {
    await this.redis.multi().zrem(this.key("ready", priority), member).zrem(this.key("since"), member).exec();
  }

  async recordCommentId(loc: CommentLocation, id: number): Promise<void> {
    await this.redis.set(this.key("cid", locationKey(loc)), String(id), "EX", STATUS_TTL_SECONDS);
  }

  async forgetCommentId(loc: CommentLocation, id: number): Promise<void> {
    await this.redis.eval(UNLOCK_LUA, 1, this.key("cid", locationKey(loc)), String(id));
  }

  /** One more failed attempt on the lane's head; returns how many so far. */
  async failed(lane: string): Promise<number> {
    const k = this.key("tries", lane);
    const [[, n]] = (await this.redis.multi().incr(k).expire(k, ID_TTL_SECONDS).exec()) as [
      [Error | null, number],
    ];
    return Number(n);
  }

  async tries(lane: string): Promise<number> {
    return Number((await this.redis.get(this.key("tries", lane))) ?? 0);
  }

  /** Try again at `dueMs` (only if the lane is still waiting). */
  async reschedule(priority: Priority, member: string, dueMs: number): Promise<void> {
    await this.redis.zadd(this.key("ready", priority), "XX", dueMs, member);
  }

  async pause(installationId: number, untilMs: number): Promise<void> {
    await this.redis.set(this.key("pause", installationId), String(untilMs), "EX", 3600);
  }

  async pausedUntil(installationId: number): Promise<number> {
    return Number((await this.redis.get(this.key("pause", installationId))) ?? 0);
  }

  /**
   * Take the installation's next write slot (and a content-creation slot when `content`), at
   * `now`: 0 when granted, else how many ms to wait. Shared by every process through Redis.
   */
  async takeRate(
    installationId: number,
    now: number,
    content: boolean,
    intervals: { writeMs: number; contentMs: number },
  ): Promise<number> {
    const r = await this.redis.eval(
      RATE_LUA,
      2,
      this.key("rate", installationId, "w"),
      this.key("rate", installationId, "c"),
      String(now),
      String(intervals.writeMs),
      String(intervals.contentMs),
      content ? "1" : "0",
    );
    return Math.max(0, Number(r));
  }
}

function parseOpenEntry(json: string): OpenEntry | null {
  try {
    const v = JSON.parse(json) as Record<string, unknown>;
    const loc = parseLocation(v.loc);
    const view = reviveView(v.view);
    const inst = Number(v.installationId);
    if (!loc || !view || !Number.isSafeInteger(inst) || typeof v.jobId !== "string" || !v.jobId) return null;
    return {
      loc,
      installationId: inst,
      jobId: v.jobId,
      ...(typeof v.pool === "string" ? { pool: v.pool } : {}),
      view,
    };
  } catch {
    return null;
  }
}

function parseSlot(h: Record<string, string>): StatusSlot | null {
  if (!h.body || !h.loc) return null;
  let loc: CommentLocation | null = null;
  try {
    loc = parseLocation(JSON.parse(h.loc));
  } catch {
    loc = null;
  }
  const installationId = Number(h.inst);
  if (!loc || !Number.isSafeInteger(installationId)) return null;
  return {
    loc,
    installationId,
    body: h.body,
    seq: Number(h.seq ?? 0),
    written: Number(h.written ?? 0),
    jobId: h.jobId ?? "",
    rank: Number(h.rank ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
  };
}
