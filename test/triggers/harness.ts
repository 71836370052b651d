import nock from "nock";
import type { Probot } from "probot";
import { POOL_NAMES } from "../../src/config/pools.js";
import { JobQueues } from "../../src/queue/queues.js";
import { Outbox, OutboxDrainer } from "../../src/status/outbox/index.js";
import { PermissionCache } from "../../src/triggers/authorize.js";
import {
  CONFIG_CACHE_SECONDS,
  createTriggerDeps,
  type DecisionRecord,
  HEAD_CACHE_SECONDS,
  registerTriggers,
  type TriggerDeps,
} from "../../src/triggers/index.js";
import { ReadCache } from "../../src/triggers/read-cache.js";
import { loadApp, memoryLogger, testProbot } from "../helpers/github.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

/** Trigger settings for tests: every pool served, github.com links. */
export function testSettings(prefix: string, appId = "1"): TriggerDeps["settings"] {
  return {
    APP_ID: appId,
    githubWebUrl: "https://github.com",
    pools: [...POOL_NAMES],
    AUTOFIX_QUEUE_PREFIX: prefix,
  };
}

export interface TriggerHarness {
  probot: Probot;
  deps: TriggerDeps;
  queues: JobQueues;
  outbox: Outbox;
  /**
   * Deliver everything the webhooks put in the outbox to (nock's) GitHub, as the web process's
   * drainer does, on the harness's clock (which it advances past the pacing). Returns how many
   * writes went out.
   */
  drain: () => Promise<number>;
  /** Move the harness's clock on (the outbox's pacing, the web's read caches). */
  later: (ms: number) => void;
  decisions: Array<{ event: string } & DecisionRecord>;
  /** Handle a delivery, then drain the outbox (what a person sees a moment later). */
  deliver: (name: string, payload: Record<string, unknown>, id?: string) => Promise<void>;
  /** Handle a delivery only: its GitHub writes stay in the outbox. */
  receive: (name: string, payload: Record<string, unknown>, id?: string) => Promise<void>;
  /** All jobs on every pool queue, with their data. */
  jobs: () => Promise<Array<{ id: string; pool: string; data: any }>>;
  close: () => Promise<void>;
}

let counter = 0;

/** The trigger handlers on a real Redis (own prefix) and a Probot whose GitHub is nock. */
export async function triggerHarness(redisUrl = TEST_REDIS_URL): Promise<TriggerHarness> {
  const prefix = uniquePrefix("trig");
  const queues = new JobQueues({ redis: redisUrl, prefix });
  const { log } = memoryLogger();
  // The outbox's and the drainer's clock: pacing and retries are time, the tests move it.
  let clock = Date.parse("2026-11-24T10:00:00Z");
  const outbox = new Outbox({ redis: queues.connection, prefix, now: () => clock });
  const deps = createTriggerDeps(
    testSettings(prefix),
    queues,
    log,
    () => new Date("2026-11-24T10:00:00Z"),
    outbox,
  );
  // The read caches on the same clock, so a test can let them expire.
  deps.permissions = new PermissionCache(60_000, () => clock);
  deps.configs = new ReadCache(CONFIG_CACHE_SECONDS * 1000, () => clock);
  deps.heads = new ReadCache(HEAD_CACHE_SECONDS * 1000, () => clock);
  const decisions: TriggerHarness["decisions"] = [];
  const probot = testProbot(log);
  const drainer = new OutboxDrainer({
    outbox,
    octokitFor: (id) => probot.auth(id),
    log,
    now: () => clock,
    backoff: { baseMs: 1000, maxMs: 1000 },
  });
  await loadApp(probot, (app) =>
    registerTriggers(app, deps, [(event, r) => decisions.push({ event, ...r })]),
  );
  if (redisUrl === TEST_REDIS_URL) await queues.queue("cpu").waitUntilReady();
  const receive: TriggerHarness["receive"] = (name, payload, id) =>
    probot.receive({
      id: id ?? `delivery-${process.pid}-${++counter}`,
      name: name as any,
      payload: payload as any,
    });
  const drain = async (): Promise<number> => {
    if (redisUrl !== TEST_REDIS_URL) return 0; // no Redis: nothing can be in the outbox
    let writes = 0;
    for (let i = 0; i < 500; i++) {
      const { pending } = await outbox.depth();
      if (pending.status + pending.reply + pending.reaction === 0) return writes;
      writes += await drainer.drainOnce();
      clock += 1000;
    }
    throw new Error("the outbox did not drain in 500 passes");
  };
  return {
    probot,
    deps,
    queues,
    outbox,
    drain,
    later: (ms) => {
      clock += ms;
    },
    decisions,
    deliver: async (name, payload, id) => {
      try {
        await receive(name, payload, id);
      } finally {
        await drain();
      }
    },
    receive,
    jobs: async () => {
      const out: Array<{ id: string; pool: string; data: any }> = [];
      for (const pool of POOL_NAMES) {
        const list = await queues.queue(pool).getJobs(["waiting", "prioritized", "active", "delayed"]);
        for (const j of list) out.push({ id: j.id!, pool, data: j.data });
      }
      return out;
    },
    close: async () => {
      await queues.close();
      if (redisUrl === TEST_REDIS_URL) await dropPrefix(prefix);
      nock.cleanAll();
    },
  };
}
