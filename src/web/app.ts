import type { ApplicationFunction, Probot } from "probot";
import type { Settings } from "../config/env.js";
import type { JobQueues } from "../queue/queues.js";
import type { Logger } from "../shared/logger.js";

/** What the web process's handlers need from the outside world; tests pass their own. */
export interface WebDeps {
  settings: Settings;
  queues: JobQueues;
  log: Logger;
}

export type Registration = (app: Probot, deps: WebDeps) => void;

/**
 * Compose the Probot application from registrations (triggers, health, operations).
 * Each registration attaches its webhook handlers or HTTP handlers to the app.
 */
export function createApp(deps: WebDeps, registrations: Registration[]): ApplicationFunction {
  return (app, options) => {
    for (const register of registrations) register(app, deps);
    options.addHandler(async (req, res) => {
      if (req.method === "GET" && req.url === "/healthz") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
        return true;
      }
      return false;
    });
  };
}
