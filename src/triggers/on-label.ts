import type { Context } from "probot";
import { acceptJob } from "./accept.js";
import { authorizeSender } from "./authorize.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { configErrorText, loadRepoConfig } from "./repo-config.js";
import { reply } from "./respond.js";
import { buildJob, buildRequest, resolveHead, type TriggerTarget } from "./target.js";

type LabelContext = Context<"issues.labeled"> | Context<"pull_request.labeled">;

/** The trigger label added to an issue or PR by an authorized person starts a job. */
export async function onLabeled(context: LabelContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const payload = context.payload;
  const { repository, sender, installation, label } = payload;
  if (!label || !installation) return { decision: "ignored", detail: "no label or installation" };
  const repo = { owner: repository.owner.login, repo: repository.name };

  const loaded = await loadRepoConfig(context);
  const triggerLabel = loaded.ok ? loaded.config.trigger_label : "autofix";
  if (label.name.toLowerCase() !== triggerLabel.toLowerCase())
    return { decision: "ignored", detail: `label ${label.name}` };

  const isPr = "pull_request" in payload;
  const item = isPr ? payload.pull_request : (payload as Context<"issues.labeled">["payload"]).issue;
  const target = { ...repo, number: item.number };

  const auth = await authorizeSender(
    context.octokit,
    repo,
    { login: sender.login, type: sender.type },
    loaded.ok ? loaded.config.allowed_bots : [],
    deps.permissions,
  );
  if (!auth.allowed) {
    if (auth.reason === "bot") return { decision: "ignored", detail: "bot not in allowed_bots" };
    if (auth.reason === "lookup-failed")
      deps.log.error({ sender: sender.login, error: auth.error }, "permission lookup failed; denying");
    await reply(
      context.octokit,
      target,
      auth.reason === "lookup-failed"
        ? `@${sender.login} Autofix could not verify your permission right now, so the \`${label.name}\` label did nothing. Remove and add it again in a minute.`
        : `@${sender.login} only people with write access can start Autofix with the \`${label.name}\` label.`,
    );
    return { decision: "unauthorized", detail: auth.reason };
  }
  if (!loaded.ok) {
    await reply(context.octokit, target, configErrorText(loaded.errors));
    return { decision: "bad-config" };
  }

  const t: TriggerTarget = {
    ...repo,
    installationId: installation.id,
    defaultBranch: repository.default_branch,
    number: item.number,
    isPullRequest: isPr,
    title: item.title,
    body: item.body ?? "",
    ...(isPr ? { headSha: payload.pull_request.head.sha, headRef: payload.pull_request.head.ref } : {}),
  };
  const built = buildRequest(t, {});
  if (!built.ok) {
    await reply(context.octokit, target, `The \`${label.name}\` label did nothing: ${built.error}.`);
    return { decision: "invalid-command", detail: built.error };
  }
  const head = await resolveHead(context.octokit, t);
  const pool = loaded.config.default_pool;
  const job = buildJob(t, head, {
    source: "label",
    request: built.request,
    pool,
    requestedBy: sender.login,
    now: deps.now(),
  });
  const result = await acceptJob(context.octokit, deps, job);
  return result.status === "enqueued"
    ? { decision: "enqueued", jobId: result.jobId, pool }
    : { decision: "duplicate", jobId: result.jobId, pool: result.pool };
}
