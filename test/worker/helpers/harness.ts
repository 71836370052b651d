import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Job } from "bullmq";
import { Redis } from "ioredis";
import { FIX_JOB_VERSION, type FixJob } from "../../../src/contracts/fix-job.js";
import { JobQueues } from "../../../src/queue/queues.js";
import { createLogger } from "../../../src/shared/logger.js";
import { Outbox } from "../../../src/status/outbox/outbox.js";
import { createAppGitHubFactory } from "../../../src/worker/github.js";
import type { PoolPlan } from "../../../src/worker/hardware.js";
import { type RunningWorker, type StartWorkerOptions, startWorker } from "../../../src/worker/service.js";
import type { JobContext, JobRunner } from "../../../src/worker/types.js";
import { WorkspaceManager } from "../../../src/worker/workspace.js";
import { type FakeGitHub, startFakeGitHub, TEST_APP_ID, testPrivateKey } from "../../helpers/fake-github.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../../helpers/redis.js";
import { type GitRemote, makeRemote } from "./git-fixture.js";
import { until } from "./proc.js";

export function makeJob(sha: string, overrides: Partial<FixJob> = {}): FixJob {
  return {
    version: FIX_JOB_VERSION,
    source: "comment",
    repository: { owner: "acme", name: "widget", installationId: 77, defaultBranch: "main" },
    target: { kind: "issue", number: 9, headSha: sha },
    request: { deterministic: true, prompt: "fix the flaky test", rawLogs: "AssertionError: boom" },
    pool: "cpu",
    fingerprint: `fp-${Math.random().toString(16).slice(2)}`,
    requestedBy: "octocat",
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

export const TARGET = "acme/widget#9";

/** Everything a worker test needs: Redis prefix, fake GitHub, git remote, work folder. */
export class WorkerTestBed {
  prefix = uniquePrefix("worker");
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  queues = new JobQueues({ redis: this.redis, prefix: this.prefix });
  workDir = mkdtempSync(join(tmpdir(), "autofix-work-"));
  gh!: FakeGitHub;
  remote!: GitRemote;
  workers: RunningWorker[] = [];
  logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

  async setup(): Promise<this> {
    this.gh = await startFakeGitHub();
    this.remote = makeRemote();
    return this;
  }

  github() {
    return createAppGitHubFactory({
      appId: TEST_APP_ID,
      privateKey: testPrivateKey(),
      githubApiUrl: this.gh.url,
      throttle: false,
    });
  }

  workspaces() {
    return new WorkspaceManager({ workDir: this.workDir, remote: this.remote.base });
  }

  async start(runJob: JobRunner, extra: Partial<StartWorkerOptions> & { plans?: PoolPlan[] } = {}) {
    const w = await startWorker({
      redisUrl: TEST_REDIS_URL,
      prefix: this.prefix,
      plans: [{ pool: "cpu", cards: 0, concurrency: 1 }],
      runJob,
      github: this.github(),
      workspaces: this.workspaces(),
      logger: this.logger,
      host: { deviceDir: join(this.workDir, "no-devices"), devices: [], ttSmi: null },
      cancelPollMs: 200,
      ...extra,
    });
    this.workers.push(w);
    return w;
  }

  async waitFor(pool: string, jobId: string, states: string[], ms = 10_000): Promise<Job<FixJob>> {
    const q = this.queues.queue(pool);
    const ok = await until(async () => states.includes(await q.getJobState(jobId)), ms, 50);
    const job = await q.getJob(jobId);
    if (!ok || !job)
      throw new Error(`job ${jobId} did not reach ${states.join("/")} (is ${await q.getJobState(jobId)})`);
    // The job's last status view is in the outbox by now; its comment shows it once delivered.
    await this.outboxDelivered(ms);
    return job;
  }

  /** Until every GitHub write in the outbox (status comments, replies) has been delivered. */
  async outboxDelivered(ms = 10_000): Promise<void> {
    const outbox = new Outbox({ redis: this.redis, prefix: this.prefix });
    await until(
      async () => {
        const d = await outbox.depth();
        return d.pending.status + d.pending.reply + d.pending.reaction === 0;
      },
      ms,
      25,
    );
  }

  async teardown(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.shutdown({ deadlineMs: 100 })));
    await this.queues.close();
    this.redis.disconnect();
    await this.gh.close();
    await dropPrefix(this.prefix);
  }
}

/** A runner that runs `cmd` in the workspace (through the process-group helper) and reports. */
export function commandRunner(cmd: string, seen: JobContext[] = []): JobRunner {
  return async (ctx) => {
    seen.push(ctx);
    ctx.onProgress({ steps: [{ name: "Reproduce the failure", state: "running" }], message: "reproducing" });
    const r = await ctx.executor.run(cmd, { signal: ctx.signal });
    return {
      state: r.exitCode === 0 ? "succeeded" : "failed",
      message: `command said: ${r.stdout.trim()}`,
      steps: [{ name: "Reproduce the failure", state: r.exitCode === 0 ? "done" : "failed" }],
      spend: { tokens: 1234, costUsd: 0.05 },
      links: { pullRequest: "https://github.com/acme/widget/pull/10" },
    };
  };
}
