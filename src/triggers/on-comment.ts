import type { Context } from "probot";
import { requestCancel } from "../queue/cancel.js";
import { isAutofixComment } from "../status/index.js";
import { acceptJob, webStatusSink } from "./accept.js";
import { authorizeSender, isBot } from "./authorize.js";
import { GitHubUnavailable } from "./budget.js";
import { type Command, parseCommand, USAGE } from "./command.js";
import { answerWhy } from "./decisions.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { configErrorText, loadRepoConfig } from "./repo-config.js";
import { type IssueTarget, issueUrl, react, reply, unavailableText } from "./respond.js";
import { buildJob, buildRequest, resolveHead, type TriggerTarget } from "./target.js";

type CommentContext = Context<"issue_comment.created">;

/** `/autofix ...` in a newly created issue or PR comment. Edited comments never count. */
export async function onIssueComment(context: CommentContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const { comment, issue, repository, sender, installation } = context.payload;
  if (
    isAutofixComment(comment.body) ||
    (deps.settings.APP_ID && String(comment.performed_via_github_app?.id) === deps.settings.APP_ID)
  ) {
    return { decision: "ignored", detail: "own comment" };
  }
  const command = parseCommand(comment.body ?? "");
  if (!command) return { decision: "ignored", detail: "no command" };
  if (!installation) return { decision: "ignored", detail: "no installation in payload" };

  const repo = { owner: repository.owner.login, repo: repository.name };
  const target: IssueTarget = { ...repo, number: issue.number };
  try {
    return await handleCommand(context, deps, command, target);
  } catch (err) {
    // GitHub could not be read in time: the delivery answers 503 (redeliverable), and the person
    // is told, once per delivery, that nothing was queued yet.
    if (err instanceof GitHubUnavailable && !isBot({ login: sender.login, type: sender.type })) {
      await reply(context.octokit, target, unavailableText(sender.login, err, "comment the command again"), {
        purpose: "unavailable",
      }).catch(() => {});
    }
    throw err;
  }
}

async function handleCommand(
  context: CommentContext,
  deps: TriggerDeps,
  command: Command,
  target: IssueTarget,
): Promise<DecisionRecord> {
  const { comment, issue, repository, sender, installation } = context.payload;
  const repo = { owner: target.owner, repo: target.repo };
  const octokit = context.octokit;

  // The config (for allowed_bots) and a person's permission do not depend on each other.
  const senderInfo = { login: sender.login, type: sender.type };
  const [loaded, personAuth] = await Promise.all([
    loadRepoConfig(context, deps.configs),
    isBot(senderInfo) ? null : authorizeSender(octokit, repo, senderInfo, [], deps.permissions),
  ]);
  const allowedBots = loaded.ok ? loaded.config.allowed_bots : [];
  const auth =
    personAuth ?? (await authorizeSender(octokit, repo, senderInfo, allowedBots, deps.permissions));
  if (!auth.allowed) {
    if (auth.reason === "lookup-failed") {
      deps.log.error({ sender: sender.login, error: auth.error }, "permission lookup failed; denying");
      await reply(
        octokit,
        target,
        `@${sender.login} Autofix could not verify your permission on this repository right now, so it did nothing. Please try again in a minute.`,
      );
      return { decision: "unauthorized", detail: "lookup failed" };
    }
    if (auth.reason === "bot") return { decision: "ignored", detail: "bot not in allowed_bots" };
    await reply(
      octokit,
      target,
      `@${sender.login} only people with write access to this repository can use \`/autofix\`.`,
    );
    return { decision: "unauthorized", detail: `role ${auth.role}` };
  }
  if (!loaded.ok) {
    await reply(octokit, target, configErrorText(loaded.errors));
    return { decision: "bad-config" };
  }
  const t: TriggerTarget = {
    ...repo,
    installationId: installation!.id,
    defaultBranch: repository.default_branch,
    number: issue.number,
    isPullRequest: issue.pull_request != null,
    title: issue.title,
    body: issue.body ?? "",
  };
  const record = await runCommand(context, deps, command, t, sender.login, loaded.config);
  // 👀 once the command is handled (its job durably enqueued): the outbox writes it after the
  // status comment. Best effort: a lost reaction must not fail (and replay) the delivery.
  await react(octokit, repo, comment.id, "eyes").catch((err: Error) =>
    deps.log.warn({ err: err.message }, "could not queue the reaction"),
  );
  return record;
}

async function runCommand(
  context: CommentContext,
  deps: TriggerDeps,
  command: Command,
  t: TriggerTarget,
  senderLogin: string,
  config: import("../config/repo-config.js").RepoConfig,
): Promise<DecisionRecord> {
  const octokit = context.octokit;
  const target: IssueTarget = { owner: t.owner, repo: t.repo, number: t.number };
  const targetKey = `${t.owner}/${t.repo}#${t.number}`;
  const fingerprint = `target:${targetKey}`.toLowerCase();

  switch (command.kind) {
    case "invalid":
      await reply(octokit, target, `\`/autofix\`: ${command.error}. Nothing was queued.\n\n${USAGE}`);
      return { decision: "invalid-command", detail: command.error };
    case "help":
      await reply(octokit, target, USAGE);
      return { decision: "replied", detail: "help" };
    case "why":
      await reply(
        octokit,
        target,
        await answerWhy({ decisions: deps.store.decisions, queues: deps.queues }, target),
      );
      return { decision: "replied", detail: "why" };
    case "status": {
      const active = await deps.queues.findActive(fingerprint);
      if (!active) {
        await reply(
          octokit,
          target,
          "No Autofix job is queued or running for this issue. The status comment above shows how the last one ended.",
        );
        return { decision: "replied", detail: "status: none" };
      }
      const state = await deps.queues.queue(active.pool).getJobState(active.jobId);
      const position = await deps.queues.position(active.pool, active.jobId);
      await reply(
        octokit,
        target,
        `Job \`${active.jobId}\` on pool \`${active.pool}\` is ${state === "active" ? "running" : `waiting${position ? ` (position ${position} in queue)` : ""}`}.`,
      );
      return { decision: "replied", detail: `status: ${state}`, jobId: active.jobId };
    }
    case "cancel": {
      const active = await deps.queues.findActive(fingerprint);
      if (!active) {
        await reply(octokit, target, "There is no queued or running Autofix job here to cancel.");
        return { decision: "replied", detail: "cancel: none" };
      }
      const outcome = await requestCancel(
        deps.queues.connection,
        deps.settings.AUTOFIX_QUEUE_PREFIX,
        active.pool,
        active.jobId,
      );
      if (outcome === "removed-waiting") {
        const last = await deps.store.loadLastJob(targetKey);
        const status = webStatusSink(deps, {
          owner: t.owner,
          repo: t.repo,
          number: t.number,
          installationId: t.installationId,
        });
        await status.write({
          state: "cancelled",
          target: targetKey,
          jobId: active.jobId,
          pool: active.pool,
          requestedBy: last?.requestedBy ?? senderLogin,
          trigger: "`/autofix` comment",
          message: `Cancelled by @${senderLogin} before it started.`,
          updatedAt: deps.now(),
        });
        return { decision: "cancelled", detail: "removed while waiting", jobId: active.jobId };
      }
      if (outcome === "signalled-running") {
        await reply(
          octokit,
          target,
          `Cancelling job \`${active.jobId}\`: its commands are being stopped; the status comment will say "cancelled" when it has.`,
        );
        return { decision: "cancelled", detail: "signalled running job", jobId: active.jobId };
      }
      await reply(octokit, target, "The job finished before it could be cancelled.");
      return { decision: "replied", detail: "cancel: already finished" };
    }
    case "retry": {
      const last = await deps.store.loadLastJob(targetKey);
      if (!last) {
        await reply(
          octokit,
          target,
          "There is no earlier Autofix request here to retry. Start one with `/autofix <what to fix>`.",
        );
        return { decision: "replied", detail: "retry: nothing to retry" };
      }
      const { statusCommentId: _drop, ...rest } = last;
      const result = await acceptJob(octokit, deps, {
        ...rest,
        source: "comment",
        requestedBy: senderLogin,
        createdAt: deps.now().toISOString(),
      });
      return result.status === "enqueued"
        ? { decision: "enqueued", detail: "retry", jobId: result.jobId, pool: last.pool }
        : { decision: "duplicate", jobId: result.jobId };
    }
    case "run": {
      const pool = command.pool ?? config.default_pool;
      if (!deps.settings.pools.includes(pool)) {
        await reply(
          octokit,
          target,
          `Pool \`${pool}\` is not served by this Autofix deployment (served: ${deps.settings.pools.join(", ")}).`,
        );
        return { decision: "invalid-command", detail: `pool ${pool} not served` };
      }
      const built = buildRequest(t, {
        prompt: command.prompt,
        deterministic: command.deterministic,
        ...(command.url ? { url: command.url } : {}),
        ...(command.existingTestPath ? { existingTestPath: command.existingTestPath } : {}),
        ...(command.allowTestChanges ? { allowTestChanges: true } : {}),
      });
      if (!built.ok) {
        await reply(octokit, target, `\`/autofix\`: ${built.error}. Nothing was queued.\n\n${USAGE}`);
        return { decision: "invalid-command", detail: built.error };
      }
      const head = await resolveHead(octokit, t, deps.heads);
      const job = buildJob(t, head, {
        source: "comment",
        request: built.request,
        pool,
        requestedBy: senderLogin,
        now: deps.now(),
      });
      const result = await acceptJob(octokit, deps, job);
      if (result.status === "duplicate")
        return { decision: "duplicate", jobId: result.jobId, pool: result.pool };
      return {
        decision: "enqueued",
        jobId: result.jobId,
        pool,
        detail: `status on ${issueUrl(deps.settings.githubWebUrl, target)}`,
      };
    }
  }
}
