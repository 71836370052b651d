import { hostname } from "node:os";
import { join, resolve } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type AgentResult, COMMIT_EMAIL, DRAINED, type ProgressEvent } from "../agent/index.js";
import { modelWaitMessage } from "../agent/spend.js";
import type { Settings } from "../config/env.js";
import { jobTargetKey } from "../contracts/fix-job.js";
import { OUTCOME_LABEL } from "../contracts/outcome.js";
import { branchNameFor } from "../publish/push.js";
import { NO_SANDBOX_WARNING } from "../sandbox/select.js";
import type { Logger } from "../shared/logger.js";
import { unpackJobArtifact } from "../worker/artifacts.js";
import type { JobContext, JobOutcome, JobRunner } from "../worker/types.js";
import { ChecklistTracker } from "./progress.js";
import { type PipelineOutput, runPipeline } from "./run.js";

export interface JobRunnerOptions {
  /** Anthropic client factory (the SDK reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL). */
  client?: () => Anthropic;
  reportDir?: string;
  /** Waits between tries during a model outage (tests inject one that does not wait). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The clock a model outage is measured with (tests pair it with `sleep`). */
  now?: () => number;
}

/** A job whose commands ran without a sandbox says so in its status comment. Pure. */
export function withSandboxWarning(kind: JobContext["executor"]["kind"], message: string): string {
  return kind === "host" ? `${message}\n\n⚠️ No sandbox: ${NO_SANDBOX_WARNING}.` : message;
}

/** The headline of a fix that passed every gate but was not published (the state is partial). */
export const UNPUBLISHED_FIX_HEADLINE = "🟡 Partial: the fix was proven, but it could not be published";

/** A run whose fix passed every gate and yet has no PR: what its comment and summary say. Pure. */
export function provenButUnpublished(
  out: Pick<PipelineOutput, "status" | "result" | "pullRequest" | "problem">,
): boolean {
  return out.status === "partial" && out.result?.status === "succeeded" && !out.pullRequest && !!out.problem;
}

/** Phase wall times and gate checks of a run, for the shared job metrics. */
export function agentMetrics(result: AgentResult): NonNullable<JobOutcome["metrics"]> {
  const gates = result.phases.flatMap((p) => p.gates);
  return {
    phases: result.phases.map((p) => ({ name: p.phase, ms: p.durationMs })),
    gates: { passed: gates.filter((g) => g.passed).length, total: gates.length },
  };
}

/** The worker's fix pipeline: what runs inside a claimed job, in its workspace. */
export function createJobRunner(settings: Settings, log: Logger, opts: JobRunnerOptions = {}): JobRunner {
  const reportDir =
    opts.reportDir ?? settings.AUTOFIX_REPORT_DIR ?? join(resolve(settings.AUTOFIX_WORK_DIR), "reports");
  const makeClient = opts.client ?? (() => new Anthropic());
  return async (ctx) => {
    const { job } = ctx;
    // A push-triggered job's fix branch is named after the pushed branch: a later push of the
    // same branch updates the same fix branch.
    const target = {
      owner: job.repository.owner,
      repo: job.repository.name,
      number: job.target.kind === "commit" ? `push-${job.target.headRef}` : job.target.number,
    };
    const tracker = new ChecklistTracker(job.request.existingTestPath !== undefined);
    let spend = { tokens: 0, costUsd: 0 };
    // While the model API is down, the comment says the job waits for it (until the next turn).
    let waiting: string | null = null;
    const push = () => ctx.onProgress({ steps: tracker.steps, message: waiting ?? tracker.message, spend });
    push();
    // Build artifacts first: the CI run's build unpacked into the workspace, so the build is incremental.
    const artifact = await unpackJobArtifact({
      job,
      config: ctx.config ?? null,
      workspace: ctx.executor.workspace,
      apiBase: settings.githubApiUrl,
      token: () => ctx.git.token(),
      maxBytes: settings.AUTOFIX_ARTIFACT_MAX_BYTES,
      signal: ctx.signal,
      ...(process.getuid?.() === 0 && ctx.executor.kind !== "host"
        ? { owner: { uid: settings.AUTOFIX_SANDBOX_UID, gid: settings.AUTOFIX_SANDBOX_GID } }
        : {}),
    });
    if (artifact || ctx.executor.details?.image) {
      const lines = [ctx.executor.details?.image && `image: ${ctx.executor.details.image}`, artifact?.status];
      ctx.onProgress({ steps: tracker.steps, message: lines.filter(Boolean).join("\n"), spend });
    }
    const out = await runPipeline({
      runId: `${ctx.jobId} (attempt ${ctx.attempt}/${ctx.maxAttempts})`,
      origin: `${job.source} trigger on ${jobTargetKey(job)}`,
      request: job.request,
      executor: ctx.executor,
      webBase: settings.githubWebUrl,
      ...(ctx.gateExecutor ? { gateExecutor: ctx.gateExecutor } : {}),
      ...(ctx.config ? { config: ctx.config } : {}),
      drain: ctx.drain,
      baseSha: job.target.headSha,
      branch: branchNameFor(target),
      job,
      reportDir,
      publish: {
        octokit: ctx.octokit,
        owner: target.owner,
        repo: target.repo,
        baseBranch: job.repository.defaultBranch,
        remoteUrl: ctx.git.remoteUrl,
        pushFrom: ctx.git.pushFrom,
        helperPath: ctx.git.helperPath,
        token: () => ctx.git.token(),
        appEmails: [COMMIT_EMAIL],
      },
      logsToken: await ctx.git.token(),
      client: makeClient(),
      model: settings.AUTOFIX_MODEL,
      signal: ctx.signal,
      modelOutage: {
        budgetMs: (settings.AUTOFIX_MODEL_OUTAGE_MINUTES ?? 5) * 60_000,
        ...(opts.sleep ? { sleep: opts.sleep } : {}),
        ...(opts.now ? { now: opts.now } : {}),
      },
      onProgress: (e: ProgressEvent) => {
        tracker.apply(e);
        if (e.type === "model_wait") waiting = modelWaitMessage(e);
        else if (e.type === "turn" || e.type === "phase_ended") waiting = null;
        if (e.type === "spend")
          spend = { tokens: e.total.inputTokens + e.total.outputTokens, costUsd: e.total.costUsd };
        push();
      },
      onPublish: () => {
        tracker.publishing();
        push();
      },
      environment: {
        pool: job.pool,
        cards: ctx.cards.join(",") || "none",
        host: hostname(),
        ...(artifact ? { build: artifact.status } : {}),
      },
    });
    // Stopped at a phase boundary because the worker is shutting down: the job goes back to
    // the queue (the lifecycle's shutdown row) instead of ending cancelled.
    if (ctx.drain.aborted && out.status === "cancelled" && out.result?.reason.startsWith(DRAINED)) {
      throw new Error(out.result.reason);
    }
    const state = out.status;
    const unpublished = provenButUnpublished(out);
    tracker.finish(
      state === "succeeded",
      out.pullRequest
        ? `${out.pullRequest.created ? "opened" : "updated"} #${out.pullRequest.number}`
        : undefined,
    );
    log.info(
      { jobId: ctx.jobId, state, report: out.reportPath, pr: out.pullRequest?.url },
      "fix pipeline finished",
    );
    const outcome: JobOutcome = {
      state,
      message: withSandboxWarning(
        ctx.executor.kind,
        out.pullRequest
          ? `Draft PR ${out.pullRequest.url} ${out.pullRequest.created ? "opened" : "updated"}: the reproduction failed on the base commit and passes with the fix.`
          : unpublished
            ? `The fix passed every gate, but ${out.problem!.replace(/^the fix was proven but /, "it ")}.${
                out.pushed
                  ? ` The proven commit ${out.pushed.sha.slice(0, 12)} is on branch \`${out.pushed.branch}\`: open a PR from it, or comment \`/autofix retry\`.`
                  : " Nothing was pushed; comment `/autofix retry` to publish it again."
              }`
            : (out.problem ?? out.result?.reason ?? "The run ended without a fix."),
      ),
      ...(unpublished ? { headline: UNPUBLISHED_FIX_HEADLINE } : {}),
      steps: tracker.steps,
      spend,
      details: {
        summary: `Report (${OUTCOME_LABEL[out.status]}): ${out.reportPath.split("/").pop()}`,
        body: out.digest,
      },
      ...(out.pullRequest ? { links: { pullRequest: out.pullRequest.url } } : {}),
      ...(out.result ? { metrics: agentMetrics(out.result) } : {}),
    };
    return outcome;
  };
}
