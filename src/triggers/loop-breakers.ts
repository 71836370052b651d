import type { ProbotOctokit } from "probot";
import type { RepoConfig } from "../config/repo-config.js";
import { CODEOWNERS_PATHS, ownersOfFiles, parseCodeowners } from "../publish/codeowners.js";
import { BRANCH_PREFIX } from "../publish/push.js";
import { isFailedConclusion, type JobResult, type RunRecord, type Streak } from "./ci/streak.js";
import { ciSubject, decisionEntry, handlerEntry, targetSubject } from "./decisions.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { checkPeoplesWork, peoplesWorkNotice } from "./people.js";
import { reply } from "./respond.js";

/**
 * Loop breakers for automatic (CI) jobs: a bot that stops after a few attempts instead of
 * opening the twentieth PR. Three rules, decided by a pure function over facts the handler
 * gathers (Redis for the counts and blocks, one GitHub read for the open PRs):
 *
 * - at most `limits.jobs_per_fingerprint` automatic jobs per failure fingerprint within
 *   `limits.window_days`;
 * - at most `limits.open_prs` open Autofix PRs per repository;
 * - a closed, unmerged Autofix PR for the fingerprint blocks new automatic jobs for it until a
 *   person asks again (`/autofix` or the trigger label on the tracking issue).
 *
 * People's requests are never held back by these: a person asking is the way out.
 */

/** The limits of a config (defaults: 3 automatic jobs per fingerprint per 7 days, 5 open PRs). Pure. */
export function limitsOf(config: RepoConfig): {
  jobsPerFingerprint: number;
  windowDays: number;
  openPrs: number;
} {
  const l = config.limits;
  return { jobsPerFingerprint: l.jobs_per_fingerprint, windowDays: l.window_days, openPrs: l.open_prs };
}

export interface LoopFacts {
  now: Date;
  limits: { jobsPerFingerprint: number; windowDays: number; openPrs: number };
  /** Start times of earlier automatic jobs for this fingerprint (any age; the window is applied here). */
  starts: readonly Date[];
  /** Open Autofix PRs in the repository (number, for the message). */
  openPrs: readonly number[];
  /** The closed, unmerged Autofix PR that blocks this fingerprint, when there is one. */
  blockedBy: { pr: number; closedAt: string; by?: string } | null;
}

export type LoopDecision =
  | { allowed: true; text: string }
  | { allowed: false; rule: "closed-pr" | "per-fingerprint" | "open-prs"; text: string };

/** Whether another automatic job may start for a fingerprint. Pure. */
export function loopDecision(f: LoopFacts): LoopDecision {
  const since = f.now.getTime() - f.limits.windowDays * 24 * 3600 * 1000;
  const recent = f.starts.filter((d) => d.getTime() > since).length;
  if (f.blockedBy) {
    return {
      allowed: false,
      rule: "closed-pr",
      text: `Autofix PR #${f.blockedBy.pr} for this failure was closed without merging${f.blockedBy.by ? ` by ${f.blockedBy.by}` : ""} (${f.blockedBy.closedAt.slice(0, 10)}): no new automatic job starts for it until a person asks again with \`/autofix\` or the trigger label here.`,
    };
  }
  if (recent >= f.limits.jobsPerFingerprint) {
    return {
      allowed: false,
      rule: "per-fingerprint",
      text: `${recent} automatic jobs already ran for this failure within ${f.limits.windowDays} days (limits.jobs_per_fingerprint: ${f.limits.jobsPerFingerprint}): no further job starts automatically. Comment \`/autofix\` here to run one anyway.`,
    };
  }
  if (f.openPrs.length >= f.limits.openPrs) {
    return {
      allowed: false,
      rule: "open-prs",
      text: `${f.openPrs.length} Autofix PRs are open in this repository (${f.openPrs
        .slice(0, 10)
        .map((n) => `#${n}`)
        .join(
          ", ",
        )}; limits.open_prs: ${f.limits.openPrs}): no new automatic job starts until some are merged or closed. Comment \`/autofix\` here to run one anyway.`,
    };
  }
  return {
    allowed: true,
    text: `loop breakers passed: ${recent}/${f.limits.jobsPerFingerprint} automatic jobs for this failure within ${f.limits.windowDays} days, ${f.openPrs.length}/${f.limits.openPrs} open Autofix PRs`,
  };
}

/**
 * Whether a pull request is one of the app's fix PRs: its branch prefix, in the repository
 * itself, opened by a bot, with the body's Autofix marker. Pure.
 */
export function isAutofixPr(
  pr: {
    head: { ref: string; repo?: { full_name: string } | null };
    user?: { type?: string; login?: string } | null;
    body?: string | null;
  },
  repoFullName: string,
): boolean {
  return (
    pr.head.ref.startsWith(BRANCH_PREFIX) &&
    (pr.body ?? "").includes("<!-- autofix:pr -->") &&
    pr.head.repo?.full_name?.toLowerCase() === repoFullName.toLowerCase() &&
    (pr.user?.type === "Bot" || /\[bot\]$/i.test(pr.user?.login ?? ""))
  );
}

/** Open Autofix PRs of a repository: one page of open PRs (bounded), filtered. */
export async function openAutofixPrs(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  signal?: AbortSignal,
): Promise<number[]> {
  const { data } = await octokit.rest.pulls.list({
    ...repo,
    state: "open",
    per_page: 100,
    ...(signal ? { request: { signal } } : {}),
  });
  const full = `${repo.owner}/${repo.repo}`;
  return data.filter((p) => isAutofixPr(p, full)).map((p) => p.number);
}

/** The file part of a test id (`tests/x/test_y.py::test_z[a]` -> `tests/x/test_y.py`); null for a bare name. Pure. */
export function testPath(testId: string | undefined): string | null {
  if (!testId) return null;
  const file = testId.split("::")[0]!.trim();
  return /[/\\]|\.\w+$/.test(file) && !file.includes(" ") ? file : null;
}

/**
 * The owners to mention when a loop breaker stops a job: CODEOWNERS (from the default branch,
 * where GitHub reads it) of the failing test's path. Empty when there is no path, no file or
 * no matching rule; a read error counts as none (the message still goes out).
 */
export async function ownersToMention(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  path: string | null,
  signal?: AbortSignal,
): Promise<string[]> {
  if (!path) return [];
  for (const file of CODEOWNERS_PATHS) {
    try {
      const { data } = await octokit.rest.repos.getContent({
        ...repo,
        path: file,
        ...(signal ? { request: { signal } } : {}),
      });
      if (Array.isArray(data) || data.type !== "file" || !("content" in data)) continue;
      const text = Buffer.from(data.content, "base64").toString("utf8");
      return ownersOfFiles([path], parseCodeowners(text))
        .filter((o) => /^@[\w.-]+(\/[\w.-]+)?$/.test(o))
        .slice(0, 5);
    } catch {
      // 404 (no file there) or trouble: try the next place, then give up quietly
    }
  }
  return [];
}

// ---- The imperative shell the CI handler calls (src/triggers/ci/on-workflow-run.ts) ----

/** Reads before the enqueue are bounded: GitHub trouble must not hold the webhook. */
const READ_TIMEOUT_MS = 3000;

/**
 * Record what one completed run meant for `/autofix why`: infra failures not counted, and the
 * streak of each counted failure against the threshold.
 */
export async function recordRunDecisions(
  deps: Pick<TriggerDeps, "store" | "now" | "log">,
  repoFullName: string,
  workflowPath: string,
  record: RunRecord,
  streaks: readonly Streak[],
  threshold: number,
): Promise<void> {
  const log = deps.store.decisions;
  const now = deps.now();
  const writes: Promise<void>[] = [];
  for (const job of record.jobs) {
    const subject = ciSubject(repoFullName, workflowPath, job.name);
    if (job.infra && isFailedConclusion(job.conclusion)) {
      writes.push(
        log.record(
          subject,
          decisionEntry(
            "infra",
            `run #${record.runNumber} (attempt ${record.attempt}): ${job.name} failed on infrastructure (${job.signature ?? job.conclusion}); not counted, the streak is neither extended nor broken`,
            now,
          ),
        ),
      );
    }
  }
  for (const s of streaks) {
    const subject = ciSubject(repoFullName, workflowPath, s.jobName);
    writes.push(
      log.record(
        subject,
        decisionEntry(
          "streak",
          `run #${record.runNumber}: ${s.jobName} failed ${s.count} consecutive runs (threshold ${threshold})${s.count >= threshold ? ": threshold reached" : ""}${s.nondeterministic ? `; intermittent (${s.flakinessEvidence.join("; ")})` : ""}`,
          now,
        ),
      ),
    );
  }
  await Promise.all(writes).catch((err: Error) =>
    deps.log.warn({ err: err.message }, "could not record CI decisions"),
  );
}

export interface AutomaticJobFacts {
  repo: { owner: string; repo: string };
  config: RepoConfig;
  streak: Streak;
  failed: JobResult;
  trackingIssue: number;
  workflowPath: string;
}

/**
 * Whether an automatic job may start: the loop breakers, then people's work. When it may not,
 * the tracking issue says why (once per situation and window, mentioning the failing test's
 * code owners for a loop breaker) and the decision is recorded. Returns null to go ahead.
 */
export async function gateAutomaticJob(
  octokit: ProbotOctokit,
  deps: Pick<TriggerDeps, "store" | "now" | "log" | "settings">,
  f: AutomaticJobFacts,
): Promise<DecisionRecord | null> {
  const now = deps.now();
  const fp = f.streak.fingerprint;
  const full = `${f.repo.owner}/${f.repo.repo}`;
  const subject = ciSubject(full, f.workflowPath, f.streak.jobName);
  const tracking = targetSubject({ ...f.repo, number: f.trackingIssue });
  const log = deps.store.decisions;
  await Promise.all([log.link(tracking, subject), deps.store.linkTrackingIssue(tracking, fp)]);
  const issue = { ...f.repo, number: f.trackingIssue };
  const limits = limitsOf(f.config);

  const [starts, blockedBy, open] = await Promise.all([
    deps.store.autoStarts(fp),
    deps.store.fingerprintBlock(fp),
    openAutofixPrs(octokit, f.repo, AbortSignal.timeout(READ_TIMEOUT_MS)).then(
      (n) => ({ ok: true as const, n }),
      (err: Error) => ({ ok: false as const, error: err.message.split("\n")[0] ?? "error" }),
    ),
  ]);
  const decision = loopDecision({ now, limits, starts, blockedBy, openPrs: open.ok ? open.n : [] });
  if (!decision.allowed) {
    await log.record(subject, decisionEntry("loop-breaker", decision.text, now));
    const windowSeconds = limits.windowDays * 24 * 3600;
    const key = `loop:${fp}:${decision.rule}${decision.rule === "closed-pr" ? `:${blockedBy?.pr}` : ""}`;
    if (await deps.store.firstTime(key, windowSeconds)) {
      const owners = await ownersToMention(
        octokit,
        f.repo,
        testPath(f.failed.testId),
        AbortSignal.timeout(READ_TIMEOUT_MS),
      );
      await reply(
        octokit,
        issue,
        [
          `Autofix did not start another automatic job for **${f.streak.jobName}**: ${decision.text}`,
          owners.length > 0
            ? `\n${owners.join(" ")}: you own ${f.failed.testId ? `\`${testPath(f.failed.testId)}\`` : "the failing test"} (CODEOWNERS); this failure needs a person now.`
            : "",
          "\nComment `/autofix why` for the recorded decisions.",
        ].join("\n"),
      );
    }
    return { decision: "ignored", detail: `loop breaker: ${decision.rule}` };
  }
  if (!open.ok) {
    await log.record(
      subject,
      decisionEntry(
        "loop-breaker",
        `could not count open Autofix PRs (${open.error}); not limited by them`,
        now,
      ),
    );
  }
  await log.record(subject, decisionEntry("loop-breaker", decision.text, now));

  const people = await checkPeoplesWork(octokit, {
    ...f.repo,
    ...(f.failed.testId ? { testId: f.failed.testId } : {}),
    fingerprint: fp,
    trackingIssue: f.trackingIssue,
    ...(deps.settings.APP_ID ? { appId: deps.settings.APP_ID } : {}),
  });
  await log.record(subject, decisionEntry("people", people.text, now));
  if (people.found && people.found.length > 0) {
    const key = `people:${fp}:${people.found
      .map((p) => p.number)
      .sort((a, b) => a - b)
      .join(",")}`;
    if (await deps.store.firstTime(key, limits.windowDays * 24 * 3600)) {
      await reply(octokit, issue, peoplesWorkNotice(people.found, f.failed.testId));
    }
    return {
      decision: "ignored",
      detail: `people's work: ${people.found.map((p) => `#${p.number}`).join(", ")}`,
    };
  }
  return null;
}

/** After the enqueue: count the start for the per-fingerprint limit and record the job. */
export async function recordAutomaticStart(
  deps: Pick<TriggerDeps, "store" | "now">,
  f: {
    repoFullName: string;
    workflowPath: string;
    jobName: string;
    fingerprint: string;
    trackingIssue: number;
  },
  result: { status: "enqueued" | "duplicate"; jobId: string; pool?: string },
): Promise<void> {
  const now = deps.now();
  const subject = ciSubject(f.repoFullName, f.workflowPath, f.jobName);
  if (result.status === "enqueued") {
    await deps.store.recordAutoStart(f.fingerprint, now, result.jobId);
    await deps.store.decisions.record(
      subject,
      decisionEntry(
        "job",
        `automatic job \`${result.jobId}\` queued${result.pool ? ` on pool ${result.pool}` : ""}; its status is on #${f.trackingIssue}`,
        now,
        { jobId: result.jobId, ...(result.pool ? { pool: result.pool } : {}) },
      ),
    );
  } else {
    await deps.store.decisions.record(
      subject,
      decisionEntry(
        "dedup",
        `job \`${result.jobId}\` for this failure is already queued or running: none added`,
        now,
        {
          jobId: result.jobId,
        },
      ),
    );
  }
}

/**
 * After a comment or label handler decided (called by the webhook wrapper): record the decision
 * for `/autofix why`; a person's job on a tracking issue lifts its closed-PR block.
 */
export async function afterPersonDecision(
  deps: Pick<TriggerDeps, "store" | "now">,
  event: string,
  payload: {
    repository?: { owner: { login: string }; name: string };
    issue?: { number: number };
    pull_request?: { number: number };
    sender?: { login: string };
  },
  record: DecisionRecord,
): Promise<void> {
  const number = payload.issue?.number ?? payload.pull_request?.number;
  if (!payload.repository || number === undefined) return;
  const subject = targetSubject({
    owner: payload.repository.owner.login,
    repo: payload.repository.name,
    number,
  });
  const now = deps.now();
  const entry = handlerEntry(event, payload.sender?.login, record, now);
  if (entry) await deps.store.decisions.record(subject, entry);
  if (record.decision === "enqueued") {
    const fp = await deps.store.fingerprintOfTracking(subject);
    if (fp && (await deps.store.clearFingerprintBlock(fp))) {
      await deps.store.decisions.record(
        subject,
        decisionEntry(
          "loop-breaker",
          `@${payload.sender?.login ?? "someone"} asked again: automatic jobs for this failure may start again`,
          now,
        ),
      );
    }
  }
}
