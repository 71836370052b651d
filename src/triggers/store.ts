import type { Redis } from "ioredis";
import { type FixJob, parseFixJob } from "../contracts/fix-job.js";
import { DecisionLog } from "./decisions.js";

/**
 * What the web process remembers in Redis beyond the queues: webhook deliveries already
 * handled, the last request per target (for `/autofix retry`), CI run history for streaks,
 * and the tracking issue per CI failure fingerprint. Keys live under the queue prefix.
 */
export class TriggerStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(...parts: string[]): string {
    return [this.prefix, "web", ...parts].join(":");
  }

  /**
   * Claim a webhook delivery. "duplicate" when it was handled, or is being handled right now
   * by another request. A failed attempt releases the claim so GitHub's redelivery runs again.
   */
  async claimDelivery(id: string): Promise<"new" | "duplicate"> {
    const ok = await this.redis.set(this.#key("delivery", id), "processing", "EX", 120, "NX");
    return ok === "OK" ? "new" : "duplicate";
  }

  async finishDelivery(id: string): Promise<void> {
    await this.redis.set(this.#key("delivery", id), "done", "EX", 3 * 24 * 3600);
  }

  async releaseDelivery(id: string): Promise<void> {
    await this.redis.del(this.#key("delivery", id));
  }

  /** Remember the last job for a target so `/autofix retry` can run the same request. */
  async saveLastJob(target: string, job: FixJob): Promise<void> {
    await this.redis.set(this.#key("last", target), JSON.stringify(job), "EX", 90 * 24 * 3600);
  }

  async loadLastJob(target: string): Promise<FixJob | null> {
    const raw = await this.redis.get(this.#key("last", target));
    if (!raw) return null;
    const parsed = parseFixJob(JSON.parse(raw));
    return parsed.ok ? parsed.job : null;
  }

  /** CI history: one JSON entry per run id, in a hash per repository, branch and workflow. */
  async recordRun(scope: string, runId: number, entry: string, keep = 30): Promise<void> {
    const key = this.#key("runs", scope);
    await this.redis.hset(key, String(runId), entry);
    await this.redis.expire(key, 60 * 24 * 3600);
    const size = await this.redis.hlen(key);
    if (size > keep) {
      const ids = (await this.redis.hkeys(key)).map(Number).sort((a, b) => a - b);
      await this.redis.hdel(key, ...ids.slice(0, size - keep).map(String));
    }
  }

  async loadRuns(scope: string): Promise<Map<number, string>> {
    const all = await this.redis.hgetall(this.#key("runs", scope));
    return new Map(Object.entries(all).map(([k, v]) => [Number(k), v]));
  }

  async getTrackingIssue(fingerprint: string): Promise<number | null> {
    const v = await this.redis.get(this.#key("tracking", fingerprint));
    return v ? Number(v) : null;
  }

  async setTrackingIssue(fingerprint: string, issue: number): Promise<void> {
    await this.redis.set(this.#key("tracking", fingerprint), String(issue), "EX", 180 * 24 * 3600);
  }

  /** The streak (by its first run) a CI job was already started for: one job per streak. */
  async streakHandled(fingerprint: string): Promise<string | null> {
    return this.redis.get(this.#key("ci-streak", fingerprint));
  }

  async markStreakHandled(fingerprint: string, startRunId: number): Promise<void> {
    await this.redis.set(this.#key("ci-streak", fingerprint), String(startRunId), "EX", 60 * 24 * 3600);
  }

  /** The recorded decisions per target or CI job, for `/autofix why`. */
  get decisions(): DecisionLog {
    return new DecisionLog(this.redis, this.prefix);
  }

  /** The CI fingerprint a tracking issue (`owner/repo#N`, lower case) belongs to. */
  async linkTrackingIssue(target: string, fingerprint: string): Promise<void> {
    await this.redis.set(this.#key("tracking-of", target), fingerprint, "EX", 180 * 24 * 3600);
  }

  async fingerprintOfTracking(target: string): Promise<string | null> {
    return this.redis.get(this.#key("tracking-of", target));
  }

  /** Loop breakers: when each automatic job for a fingerprint was started (kept 1 year, at most 100). */
  async recordAutoStart(fingerprint: string, at: Date, jobId: string): Promise<void> {
    const key = this.#key("auto-starts", fingerprint);
    await this.redis
      .multi()
      .zadd(key, at.getTime(), `${jobId}`)
      .zremrangebyrank(key, 0, -101)
      .expire(key, 365 * 24 * 3600)
      .exec();
  }

  async autoStarts(fingerprint: string): Promise<Date[]> {
    const raw = await this.redis.zrange(this.#key("auto-starts", fingerprint), "0", "-1", "WITHSCORES");
    const out: Date[] = [];
    for (let i = 1; i < raw.length; i += 2) out.push(new Date(Number(raw[i])));
    return out;
  }

  /** A closed, unmerged Autofix PR blocks automatic jobs for its fingerprint until a person asks again. */
  async blockFingerprint(
    fingerprint: string,
    info: { pr: number; closedAt: string; by?: string },
  ): Promise<void> {
    await this.redis.set(this.#key("blocked", fingerprint), JSON.stringify(info), "EX", 365 * 24 * 3600);
  }

  async fingerprintBlock(fingerprint: string): Promise<{ pr: number; closedAt: string; by?: string } | null> {
    const raw = await this.redis.get(this.#key("blocked", fingerprint));
    if (!raw) return null;
    try {
      const v = JSON.parse(raw) as { pr?: unknown; closedAt?: unknown; by?: unknown };
      if (typeof v.pr !== "number" || typeof v.closedAt !== "string") return null;
      return { pr: v.pr, closedAt: v.closedAt, ...(typeof v.by === "string" ? { by: v.by } : {}) };
    } catch {
      return null;
    }
  }

  /** A person asked again: automatic jobs for the fingerprint may start again. */
  async clearFingerprintBlock(fingerprint: string): Promise<boolean> {
    return (await this.redis.del(this.#key("blocked", fingerprint))) > 0;
  }

  /** True the first time for `name` within `ttlSeconds`: one notice per situation, not one per CI run. */
  async firstTime(name: string, ttlSeconds: number): Promise<boolean> {
    const ok = await this.redis.set(this.#key("once", name), "1", "EX", ttlSeconds, "NX");
    return ok === "OK";
  }

  /** A short lock so two concurrent deliveries do not both create a tracking issue. */
  async lock(name: string, ttlSeconds = 30): Promise<(() => Promise<void>) | null> {
    const key = this.#key("lock", name);
    const token = `${process.pid}-${Math.random()}`;
    const ok = await this.redis.set(key, token, "EX", ttlSeconds, "NX");
    if (ok !== "OK") return null;
    return async () => {
      if ((await this.redis.get(key)) === token) await this.redis.del(key);
    };
  }
}
