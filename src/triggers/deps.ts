import type { Settings } from "../config/env.js";
import type { JobQueues } from "../queue/queues.js";
import type { Logger } from "../shared/logger.js";
import type { Outbox } from "../status/outbox/index.js";
import type { PermissionCache } from "./authorize.js";
import type { ReadCache } from "./read-cache.js";
import type { LoadedConfig } from "./repo-config.js";
import type { TriggerStore } from "./store.js";

/** Everything the trigger handlers use from outside; tests build their own. */
export interface TriggerDeps {
  settings: Pick<Settings, "APP_ID" | "githubWebUrl" | "pools" | "AUTOFIX_QUEUE_PREFIX"> &
    Partial<
      Pick<Settings, "AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS" | "AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS">
    >;
  queues: JobQueues;
  /** Where every GitHub write of a webhook goes (status comments, replies, reactions). */
  outbox: Outbox;
  store: TriggerStore;
  permissions: PermissionCache;
  /** The repository config per repository, for a short while (a burst reads it once). */
  configs?: ReadCache<LoadedConfig>;
  /** Default-branch tips, for a few seconds (a burst on one repository looks it up once). */
  heads?: ReadCache<{ sha: string; ref: string }>;
  log: Logger;
  now: () => Date;
}

/** What a handler decided, for logs and metrics: one word, then detail. */
export type Decision =
  | "enqueued"
  | "duplicate"
  | "ignored"
  | "unauthorized"
  | "invalid-command"
  | "bad-config"
  | "replied"
  | "cancelled"
  | "streak-recorded";

export interface DecisionRecord {
  decision: Decision;
  detail?: string;
  jobId?: string;
  pool?: string;
}
