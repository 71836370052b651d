import nock from "nock";
import type { Probot } from "probot";
import { POOL_NAMES } from "../../src/config/pools.js";
import { JobQueues } from "../../src/queue/queues.js";
import {
  createTriggerDeps,
  type DecisionRecord,
  registerTriggers,
  type TriggerDeps,
} from "../../src/triggers/index.js";
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
  decisions: Array<{ event: string } & DecisionRecord>;
  deliver: (name: string, payload: Record<string, unknown>, id?: string) => Promise<void>;
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
  const deps = createTriggerDeps(testSettings(prefix), queues, log, () => new Date("2026-11-24T10:00:00Z"));
  const decisions: TriggerHarness["decisions"] = [];
  const probot = testProbot(log);
  await loadApp(probot, (app) =>
    registerTriggers(app, deps, [(event, r) => decisions.push({ event, ...r })]),
  );
  if (redisUrl === TEST_REDIS_URL) await queues.queue("cpu").waitUntilReady();
  return {
    probot,
    deps,
    queues,
    decisions,
    deliver: (name, payload, id) =>
      probot.receive({
        id: id ?? `delivery-${process.pid}-${++counter}`,
        name: name as any,
        payload: payload as any,
      }),
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
