import { join } from "node:path";
import { type Job, UnrecoverableError, WaitingError } from "bullmq";
import type { RepoConfig } from "../config/repo-config.js";
import { readRunConfig } from "../config/run-config.js";
import { type FixJob, parseFixJob } from "../contracts/fix-job.js";
import { cardEnv, type ExecutorFactory, type JobExecutor } from "../sandbox/executor.js";
import { jobEnvironment } from "../sandbox/select.js";
import type { Logger } from "../shared/logger.js";
import { redact } from "../shared/redact.js";
import { startStep } from "../status/checklist.js";
import { initialView } from "../status/job-view.js";
import { isFinal } from "../status/model.js";
import { StatusReporter } from "../status/reporter.js";
import { type StatusSinkFactory, statusTargetOf } from "../status/sink.js";
import type { PoolPlan } from "./hardware.js";
import {
  type AbortKind,
  classifyEnd,
  type EndInput,
  finalPatch,
  invalidJobMessage,
  isUnrecoverable,
  JobAbort,
  type JobResult,
  type RequeueMark,
  resumeOf,
  runningMessage,
  unhealthyMessage,
} from "./job-end.js";
import type { Clock, FinishedJob, GitHubAccess, GitHubFactory, JobOutcome, JobRunner } from "./types.js";
import type { Workspace, WorkspaceManagerLike } from "./workspace.js";

/**
 * The job processor: a function of injected dependencies. It owns the job's lifecycle:
 * validate, mint GitHub access, take cards, check health, prepare the workspace, make the
 * executor, run the pipeline, and always leave the status in a final state (or truthfully
 * queued for a retry). Cleanup (executor, workspace, device holders, reset, cards) runs
 * whatever happened. How an attempt ends is decided by the pure classifier in job-end.ts.
 */

export { type AbortKind, JobAbort, type JobResult } from "./job-end.js";

/** Where a raw (possibly invalid) job's status comment lives, when that can be recovered. Pure. */
export function recoverTarget(raw: unknown): {
  owner: string;
  repo: string;
  number: number;
  /** A commit target's sha (push trigger): its status is a commit comment; `number` is 0. */
  sha?: string;
  installationId: number;
  commentId?: number;
  pool?: string;
  requestedBy?: string;
} | null {
  if (!raw || typeof raw !== "object") return null;
  const r = raw as Record<string, unknown>;
  const repo = r.repository as Record<string, unknown> | undefined;
  const target = r.target as Record<string, unknown> | undefined;
  const ok = (v: unknown): v is string => typeof v === "string" && /^[A-Za-z0-9._-]{1,100}$/.test(v);
  const posInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;
  const isCommit =
    target?.kind === "commit" && typeof target.headSha === "string" && /^[0-9a-f]{40}$/.test(target.headSha);
  if (
    !repo ||
    !target ||
    !ok(repo.owner) ||
    !ok(repo.name) ||
    !posInt(repo.installationId) ||
    !(posInt(target.number) || isCommit)
  )
    return null;
  return {
    owner: repo.owner,
    repo: repo.name,
    ...(isCommit ? { number: 0, sha: target.headSha as string } : { number: target.number as number }),
    installationId: repo.installationId,
    ...(posInt(r.statusCommentId) ? { commentId: r.statusCommentId } : {}),
    ...(typeof r.pool === "string" ? { pool: r.pool } : {}),
    ...(ok(r.requestedBy) ? { requestedBy: r.requestedBy } : {}),
  };
}

export interface HostHooks {
  acquireCards(n: number, signal: AbortSignal): Promise<string[]>;
  releaseCards(cards: string[]): void;
  /** Null when the host may take the job, else why not. */
  healthCheck(plan: PoolPlan): Promise<string | null>;
  /** Called when the health check failed (the service pauses taking jobs until healthy). */
  onUnhealthy(plan: PoolPlan, reason: string): void;
  /** After the job: kill processes left holding the cards, reset them. */
  afterJob(
    plan: PoolPlan,
    info: {
      repoResetCommand: string;
      cards: string[];
      /** The job's executor, still open: the repository's reset command runs through it. */
      executor: JobExecutor | null;
    },
  ): Promise<void>;
}

export interface ActiveJobHandle {
  abort(kind: AbortKind): void;
}

export interface LifecycleDeps {
  runJob: JobRunner;
  /** Where every status view of a job goes (the GitHub comment; tests record them). */
  status: StatusSinkFactory;
  /** Makes the job's command executor around its workspace and cards. */
  executors: ExecutorFactory;
  github: GitHubFactory;
  workspaces: WorkspaceManagerLike;
  clock: Clock;
  logger: Logger;
  cancel: {
    watch(pool: string, jobId: string, onCancel: () => void): () => void;
    clear(pool: string, jobId: string): Promise<void>;
  };
  host: HostHooks;
  /** Aborted when the worker starts shutting down. */
  drain: AbortSignal;
  /** Running jobs, so the service can abort them at the shutdown deadline. */
  active: Map<string, ActiveJobHandle>;
  workerName: string;
  throttleMs?: number;
  /** Hard limit for one attempt; 0: none. */
  jobTimeoutMs?: number;
  /** Called once when a job reaches a final state (metrics); must not throw. */
  recordFinished?: (finished: FinishedJob) => Promise<void>;
}

/** One attempt of a job while it runs: what it holds, so cleanup can give it all back. */
interface Attempt {
  job: Job<FixJob>;
  fix: FixJob;
  jobId: string;
  attempt: number;
  maxAttempts: number;
  gh: GitHubAccess;
  status: StatusReporter;
  signal: AbortSignal;
  /** Why the signal was aborted (null: it was not). */
  abortKind(): AbortKind | null;
  /** Undo the abort wiring (cancel watch, BullMQ signal, timeout, active map). */
  unwire(): void;
  /** Null until the cards are taken. */
  cards: string[] | null;
  ws: Workspace | null;
  /**
   * The run-time repository config, read once from the workspace (null until then, and when
   * the file at the job's commit is invalid: the pipeline then reports its errors).
   */
  config: RepoConfig | null;
  executor: JobExecutor | null;
}

type StepsEnd = { outcome: JobOutcome } | { unhealthy: string };

export function createJobProcessor(plan: PoolPlan, deps: LifecycleDeps) {
  const log = deps.logger;
  const now = () => deps.clock.now();

  return async function processJob(
    job: Job<FixJob>,
    token?: string,
    bullSignal?: AbortSignal,
  ): Promise<JobResult> {
    const fix = await validate(job);
    const gh = await deps.github(fix.repository.installationId);
    const a = begin(job, fix, gh, bullSignal);
    try {
      const ran = await runSteps(a, token).catch((error: unknown) => ({ error }));
      if ("unhealthy" in ran) {
        // Back to the queue for a healthy host (moved there already): not an attempt's end.
        await a.status.finish({ state: "queued", message: unhealthyMessage(deps.workerName, ran.unhealthy) });
        throw new WaitingError();
      }
      return await end(a, ran, token);
    } finally {
      await cleanup(a);
    }
  };

  /** Re-validate the job data: invalid data fails permanently, with a comment saying why. */
  async function validate(job: Job): Promise<FixJob> {
    const parsed = parseFixJob(job.data);
    if (parsed.ok) return parsed.job;
    const why = `invalid job data: ${parsed.problems.join("; ")}`;
    await reportInvalid(job, why).catch((err) =>
      log.warn({ err, jobId: job.id ?? "unknown" }, "could not report an invalid job"),
    );
    throw new UnrecoverableError(redact(why));
  }

  /** The attempt's status reporter and abort wiring: cancel, BullMQ's signal, the timeout. */
  function begin(job: Job<FixJob>, fix: FixJob, gh: GitHubAccess, bullSignal?: AbortSignal): Attempt {
    const jobId = job.id ?? "unknown";
    const status = new StatusReporter(
      deps.status(statusTargetOf(fix)),
      initialView(fix, jobId, new Date(now())),
      {
        now,
        logger: log,
        ...(deps.throttleMs !== undefined ? { minIntervalMs: deps.throttleMs } : {}),
      },
    );
    const controller = new AbortController();
    let abortKind: AbortKind | null = null;
    const abort = (kind: AbortKind) => {
      if (controller.signal.aborted) return;
      abortKind = kind;
      controller.abort(new JobAbort(kind));
    };
    const key = `${plan.pool}/${jobId}`;
    deps.active.set(key, { abort });
    const unwatch = deps.cancel.watch(plan.pool, jobId, () => abort("cancel"));
    const onBullAbort = () => abort("cancel");
    bullSignal?.addEventListener("abort", onBullAbort, { once: true });
    const timeout =
      deps.jobTimeoutMs && deps.jobTimeoutMs > 0
        ? setTimeout(() => abort("timeout"), deps.jobTimeoutMs)
        : undefined;
    timeout?.unref();
    return {
      job,
      fix,
      jobId,
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      gh,
      status,
      signal: controller.signal,
      abortKind: () => abortKind,
      unwire() {
        clearTimeout(timeout);
        unwatch();
        bullSignal?.removeEventListener("abort", onBullAbort);
        deps.active.delete(key);
      },
      cards: null,
      ws: null,
      config: null,
      executor: null,
    };
  }

  /** Cards, health, workspace, executor, pipeline: each step records what it took in `a`. */
  async function runSteps(a: Attempt, token?: string): Promise<StepsEnd> {
    a.cards = await deps.host.acquireCards(plan.cards, a.signal);
    const unhealthy = await deps.host.healthCheck(plan);
    if (unhealthy) {
      deps.host.onUnhealthy(plan, unhealthy);
      await markRequeue(a, "unhealthy");
      await a.job.moveToWait(token);
      return { unhealthy };
    }
    a.status.startClock();
    a.status.update({
      state: "running",
      message: runningMessage({
        workerName: deps.workerName,
        cards: a.cards,
        attempt: a.attempt,
        maxAttempts: a.maxAttempts,
        resumed: resumeOf({
          stalledCounter: a.job.stalledCounter,
          attemptsStarted: a.job.attemptsStarted,
          attempt: a.attempt,
          progress: a.job.progress,
        }),
      }),
    });
    a.ws = await prepareWorkspace(a);
    a.config = await readRunConfig(a.ws.dir).then(
      (r) => r.config,
      () => null,
    );
    const spec = {
      workspace: a.ws.dir,
      // The build cache's variables (CCACHE_DIR ...) below the job's own.
      env: { ...a.ws.cache?.env, ...cardEnv(a.cards) },
      cards: a.cards,
      jobId: `${a.jobId}-${a.attempt}`,
      // The job's repositories borrow the mirrors' objects (submodules too): readable, never writable.
      readOnlyPaths: a.ws.objectStores ?? [join(a.ws.mirror, "objects")],
      // The repository's compiler cache, read-write (src/worker/workspace.ts, openBuildCache).
      ...(a.ws.cache ? { cacheMounts: a.ws.cache.mounts } : {}),
      pool: plan.pool,
      repository: `${a.fix.repository.owner}/${a.fix.repository.name}`,
      // The CI job's container (or autofix.yml's environment): the backend checks the image.
      environment: jobEnvironment(a.fix, a.config, plan.pool),
    };
    a.executor = await deps.executors(spec);
    // Each gate check gets the same sandbox around its own fresh checkout (the agent disposes of it).
    let gates = 0;
    // The gates get no build cache: entries the model may have written there must not stand in
    // for the compile of the commit a gate proves.
    const gateExecutor = (dir: string) =>
      deps.executors({
        ...spec,
        env: cardEnv(a.cards ?? []),
        cacheMounts: [],
        workspace: dir,
        jobId: `${spec.jobId}-gate${++gates}`,
      });
    return { outcome: await runPipeline(a, a.executor, a.cards, a.ws.mirror, gateExecutor) };
  }

  async function prepareWorkspace(a: Attempt): Promise<Workspace> {
    const { fix } = a;
    const ws = await deps.workspaces.prepare({
      repo: { owner: fix.repository.owner, name: fix.repository.name },
      sha: fix.target.headSha,
      baseBranch: fix.repository.defaultBranch,
      id: `${a.jobId}-${a.attempt}`,
      token: await a.gh.token(),
      signal: a.signal,
      // Build caches are kept per installation, repository and pool.
      installationId: fix.repository.installationId,
      buildConfig: plan.pool,
    });
    a.status.update({
      steps: startStep(
        a.status.view.steps ?? [],
        0,
        [
          `workspace at ${fix.target.headSha.slice(0, 7)}`,
          ...(ws.submodules?.length ? [`${ws.submodules.length} submodules`] : []),
          ...(ws.lfsFiles ? [`${ws.lfsFiles} LFS files`] : []),
          ...(ws.cache ? [ws.cache.reused] : []),
        ].join(", "),
      ),
    });
    return ws;
  }

  function runPipeline(
    a: Attempt,
    executor: JobExecutor,
    cards: string[],
    mirror: string,
    gateExecutor: (dir: string) => Promise<JobExecutor>,
  ): Promise<JobOutcome> {
    const { fix, gh, status } = a;
    return deps.runJob({
      job: fix,
      jobId: a.jobId,
      attempt: a.attempt,
      maxAttempts: a.maxAttempts,
      executor,
      gateExecutor,
      signal: a.signal,
      drain: deps.drain,
      config: a.config,
      octokit: gh.octokit,
      onProgress: (u) => {
        status.update({
          ...(u.steps ? { steps: u.steps } : {}),
          ...(u.message !== undefined ? { message: u.message } : {}),
          ...(u.spend ? { spend: u.spend } : {}),
          ...(u.links ? { links: { ...status.view.links, ...u.links } } : {}),
        });
      },
      git: {
        remoteUrl: deps.workspaces.remoteUrl({ owner: fix.repository.owner, name: fix.repository.name }),
        pushFrom: mirror,
        helperPath: deps.workspaces.helperPath,
        token: () => gh.token(),
      },
      cards,
    });
  }

  /** The final status, the metrics, and what BullMQ is told (see classifyEnd). */
  async function end(a: Attempt, ran: EndInput["ran"], token?: string): Promise<JobResult> {
    const e = classifyEnd(
      {
        ran,
        abortKind: a.abortKind(),
        attempt: a.attempt,
        maxAttempts: a.maxAttempts,
        draining: deps.drain.aborted,
        unrecoverable: "error" in ran && isUnrecoverable(ran.error),
      },
      { workerName: deps.workerName, jobTimeoutMs: deps.jobTimeoutMs ?? 0 },
    );
    await a.status.finish(finalPatch(e, a.status.view, ran));
    if (isFinal(e.state))
      await recordFinished(a, e.state, e.case === "returned" && "outcome" in ran ? ran.outcome : null);
    switch (e.queue) {
      case "complete":
        return e.result;
      case "wait":
        try {
          await markRequeue(a, "shutdown");
          await a.job.moveToWait(token);
        } catch (moveErr) {
          // The lock is gone (Redis trouble): a plain error makes BullMQ retry it anyway.
          log.warn({ err: moveErr, jobId: a.jobId }, "could not move the job back to wait");
          throw new Error("worker shutting down; job will be retried");
        }
        throw new WaitingError();
      case "retry":
      case "fail": {
        const safe = new Error(e.error.message);
        safe.name = e.error.name;
        throw safe;
      }
    }
  }

  /** Tell the next worker why the job runs again (see RequeueMark); never fatal. */
  async function markRequeue(a: Attempt, why: RequeueMark["requeued"]): Promise<void> {
    const mark: RequeueMark = { requeued: why, by: deps.workerName, stalledCount: a.job.stalledCounter };
    await Promise.resolve()
      .then(() => a.job.updateProgress(mark as unknown as object))
      .catch((err: Error) =>
        log.warn({ err: err.message, jobId: a.jobId }, "could not mark the requeued job"),
      );
  }

  /** Count the job once in the shared metrics; without an outcome, spend is what the status last showed. */
  async function recordFinished(a: Attempt, state: FinishedJob["state"], outcome: JobOutcome | null) {
    if (!deps.recordFinished) return;
    const shown = a.status.view.spend;
    await deps
      .recordFinished({
        pool: plan.pool,
        state,
        phases: outcome?.metrics?.phases ?? [],
        gates: outcome?.metrics?.gates ?? { passed: 0, total: 0 },
        tokens: outcome ? (outcome.spend?.tokens ?? 0) : (shown?.tokens ?? 0),
        costUsd: outcome ? (outcome.spend?.costUsd ?? 0) : (shown?.costUsd ?? 0),
      })
      .catch((err: Error) => log.warn({ err: err.message, jobId: a.jobId }, "could not record job metrics"));
  }

  /** Whatever happened: no process the job started outlives it, and the cards go back clean. */
  async function cleanup(a: Attempt): Promise<void> {
    a.unwire();
    await deps.cancel.clear(plan.pool, a.jobId).catch(() => {});
    // Nothing of the job runs from here on; its executor stays open for the repository's reset.
    await a.executor
      ?.killAll()
      .catch((err) => log.warn({ err, jobId: a.jobId }, "could not stop the job's processes"));
    const repoResetCommand = a.config?.commands.reset ?? "";
    if (a.cards) {
      const cards = a.cards;
      try {
        await deps.host.afterJob(plan, { repoResetCommand, cards, executor: a.executor });
      } catch (err) {
        log.warn({ err, pool: plan.pool }, "card hygiene after the job failed");
      } finally {
        deps.host.releaseCards(cards);
      }
    }
    await a.executor
      ?.dispose()
      .catch((err) => log.warn({ err, jobId: a.jobId }, "could not dispose of the job's executor"));
    const ws = a.ws;
    if (ws)
      await deps.workspaces
        .remove(ws)
        .catch((err) => log.warn({ err, dir: ws.dir }, "could not remove the workspace"));
  }

  async function reportInvalid(job: Job, why: string): Promise<void> {
    const t = recoverTarget(job.data);
    if (!t) {
      log.error({ jobId: job.id, why }, "invalid job without a recoverable target; no comment posted");
      return;
    }
    const sink = deps.status({
      owner: t.owner,
      repo: t.repo,
      number: t.number,
      ...(t.sha ? { sha: t.sha } : {}),
      installationId: t.installationId,
      ...(t.commentId ? { commentId: t.commentId } : {}),
    });
    await sink.write({
      state: "failed",
      target: t.sha ? `${t.owner}/${t.repo}@${t.sha}` : `${t.owner}/${t.repo}#${t.number}`,
      ...(job.id ? { jobId: job.id } : {}),
      pool: t.pool ?? plan.pool,
      requestedBy: t.requestedBy ?? "unknown",
      trigger: "invalid job",
      message: invalidJobMessage(why),
      updatedAt: new Date(now()),
    });
  }
}
