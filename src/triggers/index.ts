import type { Context, Probot } from "probot";
import type { JobQueues } from "../queue/queues.js";
import type { Logger } from "../shared/logger.js";
import { PermissionCache } from "./authorize.js";
import { onWorkflowRun } from "./ci/on-workflow-run.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { onIssueComment } from "./on-comment.js";
import { onLabeled } from "./on-label.js";
import { TriggerStore } from "./store.js";

export type { Decision, DecisionRecord, TriggerDeps } from "./deps.js";

/** Observers of every decision (logs always; metrics and tests subscribe too). */
export type DecisionListener = (event: string, record: DecisionRecord) => void;

/**
 * Wrap a handler: a webhook delivery is handled once (GitHub redelivers, and retries on
 * timeouts); a failure releases the claim and rethrows so the delivery answers 5xx and can be
 * redelivered. Every decision is logged.
 */
function once<C extends Context>(
  deps: TriggerDeps,
  event: string,
  handler: (context: C, deps: TriggerDeps) => Promise<DecisionRecord>,
  listeners: DecisionListener[],
) {
  return async (context: C) => {
    const delivery = context.id;
    if ((await deps.store.claimDelivery(delivery)) === "duplicate") {
      deps.log.info({ delivery, event }, "duplicate delivery ignored");
      for (const l of listeners) l(event, { decision: "ignored", detail: "duplicate delivery" });
      return;
    }
    try {
      const record = await handler(context, deps);
      await deps.store.finishDelivery(delivery);
      deps.log.info({ delivery, event, ...record }, `webhook ${event}: ${record.decision}`);
      for (const l of listeners) l(event, record);
    } catch (err) {
      await deps.store.releaseDelivery(delivery).catch(() => {});
      deps.log.error(
        { delivery, event, err },
        `webhook ${event} failed; GitHub will show the delivery as failed`,
      );
      throw err;
    }
  };
}

export function registerTriggers(app: Probot, deps: TriggerDeps, listeners: DecisionListener[] = []): void {
  app.on("issue_comment.created", once(deps, "issue_comment.created", onIssueComment, listeners));
  app.on("issues.labeled", once(deps, "issues.labeled", onLabeled, listeners));
  app.on("pull_request.labeled", once(deps, "pull_request.labeled", onLabeled, listeners));
  app.on("workflow_run.completed", once(deps, "workflow_run.completed", onWorkflowRun, listeners));
}

/** The handlers' dependencies from the queues and settings; `now` can be fixed for tests. */
export function createTriggerDeps(
  settings: TriggerDeps["settings"],
  queues: JobQueues,
  log: Logger,
  now: () => Date = () => new Date(),
): TriggerDeps {
  return {
    settings,
    queues,
    store: new TriggerStore(queues.connection, settings.AUTOFIX_QUEUE_PREFIX),
    permissions: new PermissionCache(),
    log,
    now,
  };
}
