import { formatProblems, loadSettings, redisEndpoint } from "../../config/env.js";
import { listWorkers, type WorkerHeartbeat } from "../../ops/heartbeat.js";
import { queueSource } from "../../ops/http.js";
import { JobQueues } from "../../queue/queues.js";
import {
  checkRedis,
  createRedis,
  describeRedisError,
  displayRedisUrl,
  withTimeout,
} from "../../queue/redis.js";
import { redact } from "../../shared/redact.js";
import { Outbox, type OutboxDepth } from "../../status/outbox/outbox.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand } from "../command.js";

export interface StatusReport {
  prefix: string;
  queues: Array<{
    pool: string;
    waiting: number;
    active: number;
    delayed: number;
    failed: number;
    completed: number;
    oldestWaitingSeconds: number;
  }>;
  workers: Array<WorkerHeartbeat & { lastSeenSeconds: number }>;
  /** GitHub writes waiting in the outbox (src/status/outbox). */
  outbox?: OutboxDepth;
}

/** Read live workers and queue depths (the CLI's imperative part). */
export async function readStatus(
  queues: JobQueues,
  pools: readonly string[],
  now = new Date(),
): Promise<StatusReport> {
  const source = queueSource(queues, pools);
  const [rows, workers, outbox] = await Promise.all([
    Promise.all(
      pools.map(async (pool) => {
        const [c, oldest] = await Promise.all([source.counts(pool), source.oldestWaiting(pool)]);
        return {
          pool,
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          failed: c.failed ?? 0,
          completed: c.completed ?? 0,
          oldestWaitingSeconds:
            oldest === null ? 0 : Math.max(0, Math.round((now.getTime() - oldest) / 1000)),
        };
      }),
    ),
    listWorkers(queues.connection, queues.prefix, now),
    new Outbox({ redis: queues.connection, prefix: queues.prefix, now: () => now.getTime() }).depth(),
  ]);
  return {
    prefix: queues.prefix,
    queues: rows,
    outbox,
    workers: workers.map((w) => ({
      ...w,
      lastSeenSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(w.seenAt)) / 1000)),
    })),
  };
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

/** The report for a person at a terminal (pure). */
export function formatStatus(report: StatusReport): string[] {
  const lines: string[] = [];
  if (report.workers.length === 0) lines.push("workers: none alive (no heartbeat in the last TTL)");
  else {
    lines.push(`workers: ${report.workers.length} alive`);
    lines.push(
      ...table([
        ["HOST", "WORKER", "POOLS", "CARDS", "CURRENT JOB", "SEEN"],
        ...report.workers.map((w) => [
          w.host,
          w.id,
          w.pools.join(",") || "-",
          w.cards.length > 0 ? w.cards.join(",") : "-",
          w.currentJob ?? "idle",
          `${age(w.lastSeenSeconds)} ago`,
        ]),
      ]).map((l) => `  ${l}`),
    );
  }
  lines.push("");
  lines.push(`queues (prefix ${report.prefix}):`);
  lines.push(
    ...table([
      ["POOL", "WAITING", "ACTIVE", "DELAYED", "FAILED", "COMPLETED", "OLDEST WAIT", "WORKERS"],
      ...report.queues.map((q) => [
        q.pool,
        String(q.waiting),
        String(q.active),
        String(q.delayed),
        String(q.failed),
        String(q.completed),
        q.waiting > 0 ? age(q.oldestWaitingSeconds) : "-",
        String(report.workers.filter((w) => w.pools.includes(q.pool)).length),
      ]),
    ]).map((l) => `  ${l}`),
  );
  if (report.outbox) lines.push("", formatOutbox(report.outbox));
  return lines;
}

/** One line on the outbox of GitHub writes (pure). */
export function formatOutbox(d: OutboxDepth): string {
  const { status, reply, reaction } = d.pending;
  if (status + reply + reaction === 0) return "GitHub writes: all delivered";
  return `GitHub writes waiting: ${status} status comment(s), ${reply} reply/other lane(s), ${reaction} reaction lane(s); oldest ${age(Math.round(d.oldestSeconds))}`;
}

const STATUS: CommandSpec = {
  usage: "autofix status [--json]",
  summary: "live workers (pools, cards, current job) and queue depths per pool, from Redis",
  options: { json: { type: "boolean", help: "print the report as JSON" } },
  notes: ["Redis is REDIS_URL (default redis://127.0.0.1:6379), the queues' prefix AUTOFIX_QUEUE_PREFIX."],
};

export const statusCommand: CliCommand = {
  name: ["status"],
  usage: STATUS.usage,
  summary: STATUS.summary,
  async run(args, io) {
    const parsed = parseCommand(STATUS, args, io);
    if (typeof parsed === "number") return parsed;
    const values = { json: parsed.values.json === true };
    const loaded = loadSettings(io.env, "cli");
    if (!loaded.ok) {
      io.err(formatProblems("autofix status cannot run", loaded.problems));
      return EXIT.badInput;
    }
    const s = loaded.settings;
    const redis = redisEndpoint(s);
    const problem = await checkRedis(redis);
    if (problem) {
      io.err(redact(`autofix status: cannot reach Redis at ${displayRedisUrl(s.REDIS_URL)}: ${problem}`));
      return EXIT.failed;
    }
    const queues = new JobQueues({
      redis: createRedis(redis, "producer"),
      prefix: s.AUTOFIX_QUEUE_PREFIX,
    });
    try {
      // The producer connection refuses commands until it is connected.
      await withTimeout(
        Promise.all(s.pools.map((pool) => queues.queue(pool).waitUntilReady())),
        5_000,
        "connecting to Redis",
      );
      const report = await readStatus(queues, s.pools);
      if (values.json) io.out(JSON.stringify(report, null, 2));
      else for (const line of formatStatus(report)) io.out(redact(line));
      return EXIT.ok;
    } catch (err) {
      io.err(
        redact(
          `autofix status: Redis at ${displayRedisUrl(s.REDIS_URL)}: ${describeRedisError(err, redis, { timeoutMs: 5_000 })}`,
        ),
      );
      return EXIT.failed;
    } finally {
      await queues.close();
      queues.connection.disconnect();
    }
  },
};
