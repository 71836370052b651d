import type { ApplicationFunction, ApplicationFunctionOptions, Probot } from "probot";
import type { Settings } from "../config/env.js";
import type { JobQueues } from "../queue/queues.js";
import type { Logger } from "../shared/logger.js";
import type { Outbox } from "../status/outbox/index.js";

/** What the web process's handlers need from the outside world; tests pass their own. */
export interface WebDeps {
  settings: Settings;
  queues: JobQueues;
  log: Logger;
  /**
   * The process's outbox of GitHub writes (its drainer is woken by them); when unset the
   * triggers make one on the queues' connection.
   */
  outbox?: Outbox;
}

/** Attaches webhook handlers to the app, or HTTP handlers through options.addHandler. */
export type Registration = (app: Probot, deps: WebDeps, options?: ApplicationFunctionOptions) => void;

/**
 * Compose the Probot application from registrations (triggers, operations: health, readiness,
 * metrics and the queue dashboard live in src/ops).
 */
export function createApp(deps: WebDeps, registrations: Registration[]): ApplicationFunction {
  return (app, options) => {
    for (const register of registrations) register(app, deps, options);
  };
}
