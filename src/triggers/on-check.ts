import { createHash } from "node:crypto";
import type { Context, ProbotOctokit } from "probot";
import { POOL_NAMES } from "../config/pools.js";
import { ciHeadline, type FixCheckRun, summarizeChecks } from "../publish/evidence.js";
import { CI_SECTION_END, CI_SECTION_START, ciSection, replaceSection } from "../publish/pr-body.js";
import { clampBody } from "../publish/pull-request.js";
import { BRANCH_PREFIX } from "../publish/push.js";
import { dispatchWorkflows } from "../publish/workflows.js";
import { redact } from "../shared/redact.js";
import { markerTarget } from "../status/index.js";
import { decisionEntry, targetSubject } from "./decisions.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { isAutofixPr } from "./loop-breakers.js";
import { targetOfBranch } from "./on-pr-closed.js";
import { loadRepoConfig } from "./repo-config.js";

type CheckContext = Context<"check_run.completed"> | Context<"check_suite.completed">;

/** The status comment's "CI on the fix" line lives between these markers. */
export const CI_LINE_START = "<!-- autofix:ci-line -->";
export const CI_LINE_END = "<!-- /autofix:ci-line -->";

/** Put the CI line into a status comment body, above its footer. Pure. */
export function withCiLine(statusBody: string, line: string): string {
  const section = `${CI_LINE_START}\n${line}\n${CI_LINE_END}`;
  return replaceSection(statusBody, section, CI_LINE_START, CI_LINE_END, "<sub>");
}

function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** The head branch, commit and PRs a check event is about. */
function subjectOf(context: CheckContext): {
  branch: string | null;
  sha: string;
  prs: Array<{ number: number; head: { ref: string; sha: string } }>;
} {
  const p = context.payload as {
    check_run?: {
      head_sha: string;
      check_suite?: { head_branch: string | null } | null;
      pull_requests?: Array<{ number: number; head: { ref: string; sha: string } }>;
    };
    check_suite?: {
      head_sha: string;
      head_branch: string | null;
      pull_requests?: Array<{ number: number; head: { ref: string; sha: string } }>;
    };
  };
  if (p.check_run) {
    return {
      branch: p.check_run.check_suite?.head_branch ?? null,
      sha: p.check_run.head_sha,
      prs: p.check_run.pull_requests ?? [],
    };
  }
  return {
    branch: p.check_suite?.head_branch ?? null,
    sha: p.check_suite?.head_sha ?? "",
    prs: p.check_suite?.pull_requests ?? [],
  };
}

/** The check runs of a commit: one page of the latest runs (100), which a fix commit does not exceed in practice. */
async function checkRunsOf(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  sha: string,
): Promise<FixCheckRun[]> {
  const { data } = await octokit.rest.checks.listForRef({
    ...repo,
    ref: sha,
    filter: "latest",
    per_page: 100,
  });
  return data.check_runs.map((r) => ({
    name: r.name,
    status: r.status,
    conclusion: r.conclusion,
    url: r.html_url ?? null,
  }));
}

/** The app's status comment on the target: its id and body (found by marker, written by a bot). */
async function statusCommentOf(
  octokit: ProbotOctokit,
  target: { owner: string; repo: string; number: number },
): Promise<{ id: number; body: string } | null> {
  const key = `${target.owner}/${target.repo}#${target.number}`;
  const data = await octokit.paginate(octokit.rest.issues.listComments, {
    owner: target.owner,
    repo: target.repo,
    issue_number: target.number,
    per_page: 100,
  });
  for (const c of [...data].reverse()) {
    const byApp = c.performed_via_github_app != null || c.user?.type === "Bot";
    if (byApp && markerTarget(c.body) === key) return { id: c.id, body: c.body ?? "" };
  }
  return null;
}

/**
 * A check run (or suite) of an Autofix fix branch finished: the PR's "CI on the fix" section and
 * the status comment's CI line show the results of the fix commit, failures included. Checks of
 * an older commit of the branch change nothing. Both writes go through the outbox (ordered per
 * PR and per comment, idempotent by content).
 */
export async function onCheckCompleted(context: CheckContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const { repository, installation } = context.payload;
  if (!installation) return { decision: "ignored", detail: "no installation" };
  const { branch, sha, prs } = subjectOf(context);
  if (!branch?.startsWith(BRANCH_PREFIX)) return { decision: "ignored", detail: "not an Autofix branch" };
  const repo = { owner: repository.owner.login, repo: repository.name };
  const target = targetOfBranch(repo, branch);
  if (!target) return { decision: "ignored", detail: `branch ${branch} names no target` };
  const octokit = context.octokit;

  let number = prs.find((p) => p.head.ref === branch)?.number;
  if (number === undefined) {
    const { data } = await octokit.rest.pulls.list({
      ...repo,
      head: `${repo.owner}:${branch}`,
      state: "open",
      per_page: 5,
    });
    number = data.find((p) => p.head.ref === branch)?.number;
  }
  if (number === undefined) return { decision: "ignored", detail: `no open PR for ${branch}` };
  const { data: pr } = await octokit.rest.pulls.get({ ...repo, pull_number: number });
  if (!isAutofixPr(pr, repository.full_name))
    return { decision: "ignored", detail: `#${number} is not an Autofix PR` };
  if (pr.head.sha !== sha)
    return {
      decision: "ignored",
      detail: `checks of ${sha.slice(0, 10)}, not the PR's head ${pr.head.sha.slice(0, 10)}`,
    };

  // `/autofix why` on the fix PR shows its target's decisions too.
  await deps.store.decisions.link(targetSubject({ ...repo, number }), targetSubject(target));
  const summary = summarizeChecks(await checkRunsOf(octokit, repo, sha), POOL_NAMES);
  const headline = ciHeadline(summary);
  const body = clampBody(
    redact(
      replaceSection(
        pr.body ?? "",
        ciSection(summary, sha),
        CI_SECTION_START,
        CI_SECTION_END,
        "## Performance Impact",
      ),
    ),
  );
  const writes: Promise<unknown>[] = [];
  if (body !== (pr.body ?? "")) {
    writes.push(
      deps.outbox.request(
        installation.id,
        `pr:${repository.full_name}#${number}`.toLowerCase(),
        "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
        { ...repo, pull_number: number, body },
        { id: `ci-on-fix:${repository.full_name}#${number}:${hash(body)}` },
      ),
    );
  }
  const status = await statusCommentOf(octokit, target);
  const pending = summary.pending.length > 0;
  const line = `**${headline}** (${pending ? "updating as checks finish" : "all checks finished"}; [PR #${number}](${pr.html_url}), commit \`${sha.slice(0, 10)}\`)`;
  if (status) {
    const updated = withCiLine(status.body, line);
    if (updated !== status.body) {
      writes.push(
        deps.outbox.request(
          installation.id,
          `status-ci:${repository.full_name}#${target.number}`.toLowerCase(),
          "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
          { ...repo, comment_id: status.id, body: updated },
          { id: `ci-line:${status.id}:${hash(updated)}` },
        ),
      );
    }
  }
  await Promise.all(writes);
  // One record per distinct result of a commit, not one per check event.
  if (
    (!pending || summary.failed.length > 0) &&
    (await deps.store.firstTime(`ci-on-fix:${repository.full_name}:${sha}:${hash(headline)}`, 30 * 24 * 3600))
  ) {
    await deps.store.decisions.record(
      targetSubject(target),
      decisionEntry("ci-on-fix", `${headline} (PR #${number}, commit ${sha.slice(0, 10)})`, deps.now()),
    );
  }
  return {
    decision: "replied",
    detail: `PR #${number}: ${summary.passed}/${summary.total} passed, ${summary.failed.length} failed, ${summary.pending.length} running`,
  };
}

type PushedContext = Context<"pull_request.opened"> | Context<"pull_request.synchronize">;

/**
 * An Autofix PR opened or got a new fix commit: start the configured workflows that do not run
 * on push (`ci_on_fix.dispatch`) on its branch. What was started or refused is recorded.
 */
export async function onFixPrPushed(context: PushedContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const { pull_request: pr, repository, installation } = context.payload;
  if (!installation) return { decision: "ignored", detail: "no installation" };
  if (!isAutofixPr(pr, repository.full_name)) return { decision: "ignored", detail: "not an Autofix PR" };
  const repo = { owner: repository.owner.login, repo: repository.name };
  const target = targetOfBranch(repo, pr.head.ref);
  if (!target) return { decision: "ignored", detail: `branch ${pr.head.ref} names no target` };
  const loaded = await loadRepoConfig(context);
  if (!loaded.ok) return { decision: "bad-config" };
  const wanted = loaded.config.ci_on_fix.dispatch;
  if (wanted.length === 0) return { decision: "ignored", detail: "no ci_on_fix.dispatch workflows" };
  // Once per commit: a redelivered or repeated event does not start the workflows twice.
  if (!(await deps.store.firstTime(`dispatch:${repository.full_name}:${pr.head.sha}`, 30 * 24 * 3600)))
    return { decision: "duplicate", detail: `workflows already dispatched for ${pr.head.sha.slice(0, 10)}` };
  const results = await dispatchWorkflows(context.octokit, repo, pr.head.ref, wanted);
  const text = results
    .map((r) => (r.ok ? `${r.workflow} started` : `${r.workflow} not started (${r.error})`))
    .join("; ");
  await deps.store.decisions.record(
    targetSubject(target),
    decisionEntry("ci-on-fix", `PR #${pr.number} at ${pr.head.sha.slice(0, 10)}: ${text}`, deps.now()),
  );
  return { decision: "replied", detail: `dispatch: ${text}` };
}
