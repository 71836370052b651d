import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Job, UnrecoverableError, WaitingError } from "bullmq";
import { parseRepoConfig, REPO_CONFIG_PATH } from "../config/repo-config.js";
import { type FixJob, parseFixJob } from "../contracts/fix-job.js";
import { cardEnv, type ExecutorFactory, type JobExecutor } from "../sandbox/executor.js";
import type { Logger } from "../shared/logger.js";
import { redact } from "../shared/redact.js";
import { upsertStatusComment } from "../status/comment.js";
import { baseView } from "../status/index.js";
import { defaultSteps, type StatusStep } from "../status/model.js";
import { renderStatus } from "../status/render.js";
import type { PoolPlan } from "./hardware.js";
import { issueRefOf, StatusReporter } from "./status-reporter.js";
import type { Clock, FinalState, FinishedJob, GitHubFactory, JobOutcome, JobRunner } from "./types.js";
import type { Workspace, WorkspaceManagerLike } from "./workspace.js";

/**
 * The job processor: a function of injected dependencies. It owns the job's lifecycle:
 * validate, mint GitHub access, take cards, check health, prepare the workspace, run the
 * pipeline, and always leave the status comment in a final state (or truthfully queued for
 * a retry). Cleanup (workspace, device holders, reset) runs whatever happened.
 */

/** Why a job's signal was aborted. */
export type AbortKind = "cancel" | "shutdown" | "timeout";

export class JobAbort extends Error {
  constructor(readonly kind: AbortKind) {
    super(
      kind === "cancel"
        ? "cancelled by request"
        : kind === "shutdown"
          ? "worker shutting down"
          : "job timed out",
    );
    this.name = "JobAbort";
  }
}

/** Where a raw (possibly invalid) job's status comment lives, when that can be recovered. Pure. */
export function recoverTarget(raw: unknown): {
  owner: string;
  repo: string;
  number: number;
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
  if (
    !repo ||
    !target ||
    !ok(repo.owner) ||
    !ok(repo.name) ||
    !posInt(repo.installationId) ||
    !posInt(target.number)
  )
    return null;
  return {
    owner: repo.owner,
    repo: repo.name,
    number: target.number,
    installationId: repo.installationId,
    ...(posInt(r.statusCommentId) ? { commentId: r.statusCommentId } : {}),
    ...(typeof r.pool === "string" ? { pool: r.pool } : {}),
    ...(ok(r.requestedBy) ? { requestedBy: r.requestedBy } : {}),
  };
}

/** Host-side hooks around each job (card allocation, health, hygiene). */
export interface HostHooks {
  acquireCards(n: number, signal: AbortSignal): Promise<string[]>;
  releaseCards(cards: string[]): void;
  /** Null when the host may take the job, else why not. */
  healthCheck(plan: PoolPlan): Promise<string | null>;
  /** Called when the health check failed (the service pauses taking jobs until healthy). */
  onUnhealthy(plan: PoolPlan, reason: string): void;
  /** After the job: kill processes left holding the cards, reset them. */
  afterJob(plan: PoolPlan, info: { repoResetCommand: string; cards: string[] }): Promise<void>;
}

export interface ActiveJobHandle {
  abort(kind: AbortKind): void;
}

export interface LifecycleDeps {
  runJob: JobRunner;
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

export interface JobResult {
  state: FinalState;
  message: string;
  links?: JobOutcome["links"];
}

function errorMessage(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}

async function readRepoResetCommand(ws: Workspace | null): Promise<string> {
  if (!ws) return "";
  try {
    const parsed = parseRepoConfig(await readFile(join(ws.dir, REPO_CONFIG_PATH), "utf8"));
    return parsed.ok ? parsed.config.commands.reset : "";
  } catch {
    return "";
  }
}

/** Mark steps still running as failed (or leave them), for a final view. */
function settleSteps(steps: StatusStep[] | undefined, to: "failed" | "pending"): StatusStep[] | undefined {
  return steps?.map((s) => (s.state === "running" ? { ...s, state: to } : s));
}

export function createJobProcessor(plan: PoolPlan, deps: LifecycleDeps) {
  const log = deps.logger;
  return async function processJob(
    job: Job<FixJob>,
    token?: string,
    bullSignal?: AbortSignal,
  ): Promise<JobResult> {
    const jobId = job.id ?? "unknown";
    const parsed = parseFixJob(job.data);
    if (!parsed.ok) {
      const why = `invalid job data: ${parsed.problems.join("; ")}`;
      await reportInvalid(job, why).catch((err) =>
        log.warn({ err, jobId }, "could not report an invalid job"),
      );
      throw new UnrecoverableError(redact(why));
    }
    const fix = parsed.job;
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const gh = await deps.github(fix.repository.installationId);
    /** Count the job once in the shared metrics; spend is what the status comment last showed. */
    const finished = async (
      state: FinalState,
      numbers: Partial<Omit<FinishedJob, "pool" | "state">> = {},
    ) => {
      if (!deps.recordFinished) return;
      await deps
        .recordFinished({
          pool: plan.pool,
          state,
          phases: numbers.phases ?? [],
          gates: numbers.gates ?? { passed: 0, total: 0 },
          tokens: numbers.tokens ?? reporter.view.spend?.tokens ?? 0,
          costUsd: numbers.costUsd ?? reporter.view.spend?.costUsd ?? 0,
        })
        .catch((err: Error) => log.warn({ err: err.message, jobId }, "could not record job metrics"));
    };
    const reporter = new StatusReporter(
      gh.octokit,
      issueRefOf(fix),
      {
        ...baseView(fix, jobId, new Date(deps.clock.now())),
        steps: defaultSteps(!!fix.request.existingTestPath),
      },
      {
        clock: deps.clock,
        logger: log,
        ...(deps.throttleMs !== undefined ? { minIntervalMs: deps.throttleMs } : {}),
        ...(fix.statusCommentId ? { commentId: fix.statusCommentId } : {}),
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

    let cards: string[] = [];
    let ws: Workspace | null = null;
    let executor: JobExecutor | null = null;
    let cardsHeld = false;
    let wentBackToWait = false;
    try {
      cards = await deps.host.acquireCards(plan.cards, controller.signal);
      cardsHeld = true;
      const unhealthy = await deps.host.healthCheck(plan);
      if (unhealthy) {
        deps.host.onUnhealthy(plan, unhealthy);
        await job.moveToWait(token);
        wentBackToWait = true;
        await reporter.finish({
          state: "queued",
          message: `Worker ${deps.workerName} failed its hardware check (${unhealthy}); the job went back to the queue for a healthy host.`,
        });
        throw new WaitingError();
      }

      const resumed = job.stalledCounter > 0 || job.attemptsStarted > attempt;
      reporter.startClock();
      reporter.update({
        state: "running",
        message: [
          `Running on ${deps.workerName}${cards.length ? ` (cards ${cards.join(", ")})` : ""}.`,
          attempt > 1 ? `Attempt ${attempt}/${maxAttempts}.` : "",
          resumed ? "Resumed after the previous worker stopped responding." : "",
        ]
          .filter(Boolean)
          .join(" "),
      });

      const ghToken = await gh.token();
      ws = await deps.workspaces.prepare({
        repo: { owner: fix.repository.owner, name: fix.repository.name },
        sha: fix.target.headSha,
        baseBranch: fix.repository.defaultBranch,
        id: `${jobId}-${attempt}`,
        token: ghToken,
        signal: controller.signal,
      });
      reporter.update({
        steps: reporter.view.steps?.map((s, i) =>
          i === 0 ? { ...s, state: "running", detail: `workspace at ${fix.target.headSha.slice(0, 7)}` } : s,
        ),
      });

      executor = await deps.executors({
        workspace: ws.dir,
        env: cardEnv(cards),
        cards,
        jobId: `${jobId}-${attempt}`,
      });
      const outcome = await deps.runJob({
        job: fix,
        jobId,
        attempt,
        maxAttempts,
        executor,
        signal: controller.signal,
        drain: deps.drain,
        octokit: gh.octokit,
        onProgress: (u) => {
          reporter.update({
            ...(u.steps ? { steps: u.steps } : {}),
            ...(u.message !== undefined ? { message: u.message } : {}),
            ...(u.spend ? { spend: u.spend } : {}),
            ...(u.links ? { links: { ...reporter.view.links, ...u.links } } : {}),
          });
        },
        git: {
          remoteUrl: deps.workspaces.remoteUrl({ owner: fix.repository.owner, name: fix.repository.name }),
          helperPath: deps.workspaces.helperPath,
          token: () => gh.token(),
        },
        cards,
      });
      if (abortKind) throw new JobAbort(abortKind);
      await reporter.finish({
        state: outcome.state,
        message: outcome.message,
        ...(outcome.steps
          ? { steps: outcome.steps }
          : { steps: settleSteps(reporter.view.steps, "pending") }),
        ...(outcome.spend ? { spend: outcome.spend } : {}),
        ...(outcome.links ? { links: { ...reporter.view.links, ...outcome.links } } : {}),
        ...(outcome.details ? { details: outcome.details } : {}),
      });
      await finished(outcome.state, {
        phases: outcome.metrics?.phases ?? [],
        gates: outcome.metrics?.gates ?? { passed: 0, total: 0 },
        tokens: outcome.spend?.tokens ?? 0,
        costUsd: outcome.spend?.costUsd ?? 0,
      });
      return {
        state: outcome.state,
        message: redact(outcome.message),
        ...(outcome.links ? { links: outcome.links } : {}),
      };
    } catch (err) {
      if (wentBackToWait) throw err;
      // A pipeline that stops at a phase boundary because the worker is draining counts as shutdown.
      const kind: AbortKind | null =
        abortKind ?? (err instanceof JobAbort ? err.kind : null) ?? (deps.drain.aborted ? "shutdown" : null);
      const steps = settleSteps(reporter.view.steps, "failed");
      if (kind === "cancel") {
        await reporter.finish({
          state: "cancelled",
          message: "Cancelled by request; running commands were stopped.",
          ...(steps ? { steps } : {}),
        });
        await finished("cancelled");
        return { state: "cancelled", message: "cancelled by request" };
      }
      if (kind === "timeout") {
        const message = `Timed out: the job ran longer than ${Math.round((deps.jobTimeoutMs ?? 0) / 60_000)} min, the worker's limit.`;
        await reporter.finish({ state: "timed_out", message, ...(steps ? { steps } : {}) });
        await finished("timed_out");
        return { state: "timed_out", message };
      }
      if (kind === "shutdown") {
        await reporter.finish({
          state: "queued",
          message: `Worker ${deps.workerName} is shutting down; job will be retried.`,
          steps: settleSteps(reporter.view.steps, "pending"),
        });
        try {
          await job.moveToWait(token);
        } catch (moveErr) {
          // The lock is gone (Redis trouble): a plain error makes BullMQ retry it anyway.
          log.warn({ err: moveErr, jobId }, "could not move the job back to wait");
          throw new Error("worker shutting down; job will be retried");
        }
        throw new WaitingError();
      }
      const reason = errorMessage(err);
      const unrecoverable = err instanceof Error && err.name === "UnrecoverableError";
      if (attempt < maxAttempts && !unrecoverable) {
        await reporter.finish({
          state: "queued",
          message: `Attempt ${attempt}/${maxAttempts} failed: ${reason}. Queued for retry ${attempt + 1}/${maxAttempts}.`,
          steps: settleSteps(reporter.view.steps, "pending"),
        });
      } else {
        await reporter.finish({
          state: "failed",
          message: `Failed${maxAttempts > 1 && !unrecoverable ? ` after ${maxAttempts} attempts` : ""}: ${reason}`,
          ...(steps ? { steps } : {}),
        });
        await finished("failed");
      }
      // BullMQ stores the message in Redis in clear text: keep the redacted one (and the name,
      // which BullMQ reads to tell an UnrecoverableError).
      const safe = new Error(reason);
      if (err instanceof Error) safe.name = err.name;
      throw safe;
    } finally {
      clearTimeout(timeout);
      unwatch();
      bullSignal?.removeEventListener("abort", onBullAbort);
      deps.active.delete(key);
      await deps.cancel.clear(plan.pool, jobId).catch(() => {});
      // No process the job started outlives it.
      await executor
        ?.dispose()
        .catch((err) => log.warn({ err, jobId }, "could not dispose of the job's executor"));
      const repoResetCommand = await readRepoResetCommand(ws);
      if (ws)
        await deps.workspaces
          .remove(ws)
          .catch((err) => log.warn({ err, dir: ws?.dir }, "could not remove the workspace"));
      if (cardsHeld) {
        try {
          await deps.host.afterJob(plan, { repoResetCommand, cards });
        } catch (err) {
          log.warn({ err, pool: plan.pool }, "card hygiene after the job failed");
        } finally {
          deps.host.releaseCards(cards);
        }
      }
    }
  };

  async function reportInvalid(job: Job, why: string): Promise<void> {
    const t = recoverTarget(job.data);
    if (!t) {
      log.error({ jobId: job.id, why }, "invalid job without a recoverable target; no comment posted");
      return;
    }
    const gh = await deps.github(t.installationId);
    const ref = { owner: t.owner, repo: t.repo, issue_number: t.number };
    const body = renderStatus({
      state: "failed",
      target: `${t.owner}/${t.repo}#${t.number}`,
      ...(job.id ? { jobId: job.id } : {}),
      pool: t.pool ?? plan.pool,
      requestedBy: t.requestedBy ?? "unknown",
      trigger: "invalid job",
      message: `Failed: the queued job is not valid, so it was not run. ${why}`,
      updatedAt: new Date(deps.clock.now()),
    });
    await upsertStatusComment(gh.octokit, ref, body, t.commentId ?? null);
  }
}
