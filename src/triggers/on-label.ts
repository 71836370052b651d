import type { Context } from "probot";
import { acceptJob } from "./accept.js";
import { authorizeSender, isBot } from "./authorize.js";
import { GitHubUnavailable } from "./budget.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { configErrorText, loadRepoConfig } from "./repo-config.js";
import { reply, unavailableText } from "./respond.js";
import { buildJob, buildRequest, resolveHead, type TriggerTarget } from "./target.js";

type LabelContext = Context<"issues.labeled"> | Context<"pull_request.labeled">;

/** The trigger label added to an issue or PR by an authorized person starts a job. */
export async function onLabeled(context: LabelContext, deps: TriggerDeps): Promise<DecisionRecord> {
  const payload = context.payload;
  const { repository, sender, installation, label } = payload;
  if (!label || !installation) return { decision: "ignored", detail: "no label or installation" };
  const isPr = "pull_request" in payload;
  const item = isPr ? payload.pull_request : (payload as Context<"issues.labeled">["payload"]).issue;
  const target = { owner: repository.owner.login, repo: repository.name, number: item.number };
  const known = { ours: label.name.toLowerCase() === DEFAULT_TRIGGER_LABEL };
  try {
    return await handleLabel(context, deps, known);
  } catch (err) {
    // GitHub could not be read in time: 503 (redeliverable); a person who used the trigger label
    // is told once per delivery that nothing was queued yet.
    if (
      err instanceof GitHubUnavailable &&
      known.ours &&
      !isBot({ login: sender.login, type: sender.type })
    ) {
      await reply(
        context.octokit,
        target,
        unavailableText(sender.login, err, `remove the \`${label.name}\` label and add it again`),
        { purpose: "unavailable" },
      ).catch(() => {});
    }
    throw err;
  }
}

const DEFAULT_TRIGGER_LABEL = "autofix";

async function handleLabel(
  context: LabelContext,
  deps: TriggerDeps,
  known: { ours: boolean },
): Promise<DecisionRecord> {
  const payload = context.payload;
  const { repository, sender, installation, label } = payload as typeof payload & {
    label: NonNullable<typeof payload.label>;
    installation: NonNullable<typeof payload.installation>;
  };
  const repo = { owner: repository.owner.login, repo: repository.name };

  const loaded = await loadRepoConfig(context, deps.configs);
  const triggerLabel = loaded.ok ? loaded.config.trigger_label : DEFAULT_TRIGGER_LABEL;
  if (label.name.toLowerCase() !== triggerLabel.toLowerCase())
    return { decision: "ignored", detail: `label ${label.name}` };
  known.ours = true;

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
  const head = await resolveHead(context.octokit, t, deps.heads);
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
