import type { Context, Probot } from "probot";
import type { JobQueues } from "../queue/queues.js";
import type { Logger } from "../shared/logger.js";
import { Outbox } from "../status/outbox/index.js";
import { PermissionCache } from "./authorize.js";
import { boundReads, GitHubUnavailable } from "./budget.js";
import { onWorkflowRun } from "./ci/on-workflow-run.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { afterPersonDecision } from "./loop-breakers.js";
import { onCheckCompleted, onFixPrPushed } from "./on-check.js";
import { onIssueComment } from "./on-comment.js";
import { onLabeled } from "./on-label.js";
import { onPullRequestClosed } from "./on-pr-closed.js";
import { onPush } from "./on-push.js";
import { ReadCache } from "./read-cache.js";
import { bindDelivery } from "./respond.js";
import { TriggerStore } from "./store.js";

export type { Decision, DecisionRecord, TriggerDeps } from "./deps.js";

/** Events whose decisions are a person's trigger, recorded per target for `/autofix why`. */
const PERSON_EVENTS = new Set(["issue_comment.created", "issues.labeled", "pull_request.labeled"]);

/** Observers of every decision (logs always; metrics and tests subscribe too). */
export type DecisionListener = (event: string, record: DecisionRecord) => void;

/** The defaults of the webhook's read limits (settings AUTOFIX_WEBHOOK_*). */
export const DEFAULT_READ_BUDGET_SECONDS = 5;
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 3;
/** How long the web reuses a repository's `.github/autofix.yml`, and a default branch's tip. */
export const CONFIG_CACHE_SECONDS = 60;
export const HEAD_CACHE_SECONDS = 10;

/**
 * Wrap a handler: a webhook delivery is handled once (GitHub redelivers, and retries on
 * timeouts); a failure releases the claim and rethrows so the delivery answers 5xx and can be
 * redelivered. Every decision is logged.
 *
 * The handler's GitHub client is bounded (src/triggers/budget.ts: one try per request, a
 * per-request timeout, one budget for the delivery) and its writes go to the outbox
 * (src/triggers/respond.ts), so the answer comes right after the durable enqueue: 2xx only
 * when the job (or the reply) is in Redis, 503 when GitHub could not be read in time.
 */
function once<C extends Context>(
  deps: TriggerDeps,
  event: string,
  handler: (context: C, deps: TriggerDeps) => Promise<DecisionRecord>,
  listeners: DecisionListener[],
) {
  const budgetMs = 1000 * (deps.settings.AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS ?? DEFAULT_READ_BUDGET_SECONDS);
  const requestTimeoutMs =
    1000 * (deps.settings.AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS ?? DEFAULT_REQUEST_TIMEOUT_SECONDS);
  return async (context: C) => {
    const delivery = context.id;
    if ((await deps.store.claimDelivery(delivery)) === "duplicate") {
      deps.log.info({ delivery, event }, "duplicate delivery ignored");
      for (const l of listeners) l(event, { decision: "ignored", detail: "duplicate delivery" });
      return;
    }
    const budget = boundReads(context.octokit, { budgetMs, requestTimeoutMs });
    const installationId = (context.payload as { installation?: { id?: number } }).installation?.id;
    if (installationId) bindDelivery(context.octokit, { delivery, installationId, outbox: deps.outbox });
    try {
      const record = await handler(context, deps);
      // What a person's trigger decided, for `/autofix why` (CI handlers record their own).
      if (PERSON_EVENTS.has(event))
        await afterPersonDecision(deps, event, context.payload as never, record).catch((err: Error) =>
          deps.log.warn({ err: err.message, delivery }, "could not record the decision"),
        );
      await deps.store.finishDelivery(delivery);
      deps.log.info({ delivery, event, ...record }, `webhook ${event}: ${record.decision}`);
      for (const l of listeners) l(event, record);
    } catch (err) {
      await deps.store.releaseDelivery(delivery).catch(() => {});
      if (err instanceof GitHubUnavailable) {
        deps.log.warn(
          { delivery, event, err: err.message },
          `webhook ${event}: GitHub could not be read in time; answering 503 so the delivery can be redelivered`,
        );
      } else {
        deps.log.error(
          { delivery, event, err },
          `webhook ${event} failed; GitHub will show the delivery as failed`,
        );
      }
      throw err;
    } finally {
      budget.dispose();
    }
  };
}

export function registerTriggers(app: Probot, deps: TriggerDeps, listeners: DecisionListener[] = []): void {
  app.on("issue_comment.created", once(deps, "issue_comment.created", onIssueComment, listeners));
  app.on("issues.labeled", once(deps, "issues.labeled", onLabeled, listeners));
  app.on("pull_request.labeled", once(deps, "pull_request.labeled", onLabeled, listeners));
  app.on("workflow_run.completed", once(deps, "workflow_run.completed", onWorkflowRun, listeners));
  // Closing the loop (issue 19): a closed Autofix PR, and the checks of a fix commit.
  app.on("pull_request.closed", once(deps, "pull_request.closed", onPullRequestClosed, listeners));
  app.on("check_run.completed", once(deps, "check_run.completed", onCheckCompleted, listeners));
  app.on("check_suite.completed", once(deps, "check_suite.completed", onCheckCompleted, listeners));
  app.on(
    ["pull_request.opened", "pull_request.synchronize"],
    once(deps, "pull_request.opened", onFixPrPushed, listeners),
  );
  app.on("push", once(deps, "push", onPush, listeners));
}

/**
 * The handlers' dependencies from the queues and settings; `now` can be fixed for tests. The
 * outbox defaults to one on the queues' Redis connection and prefix (pass the process's own
 * when a drainer in the same process should be woken by its writes).
 */
export function createTriggerDeps(
  settings: TriggerDeps["settings"],
  queues: JobQueues,
  log: Logger,
  now: () => Date = () => new Date(),
  outbox: Outbox = new Outbox({ redis: queues.connection, prefix: settings.AUTOFIX_QUEUE_PREFIX }),
): TriggerDeps {
  return {
    settings,
    queues,
    outbox,
    store: new TriggerStore(queues.connection, settings.AUTOFIX_QUEUE_PREFIX),
    permissions: new PermissionCache(),
    configs: new ReadCache(CONFIG_CACHE_SECONDS * 1000),
    heads: new ReadCache(HEAD_CACHE_SECONDS * 1000),
    log,
    now,
  };
}
