import { dashboardCredentials } from "../ops/auth.js";
import { createOpsHandler } from "../ops/http.js";
import { OpsMetrics } from "../ops/metrics.js";
import { createTriggerDeps, type DecisionListener, registerTriggers } from "../triggers/index.js";
import type { Registration } from "./app.js";

/** The webhook handlers, built from the shared web dependencies. */
export function triggersRegistration(listeners: DecisionListener[] = []): Registration {
  return (app, web) =>
    registerTriggers(
      app,
      createTriggerDeps(web.settings, web.queues, web.log, undefined, web.outbox),
      listeners,
    );
}

/** The operations endpoints (see createOpsHandler in src/ops/http.ts) as one HTTP handler. */
export function opsRegistration(metrics: OpsMetrics): Registration {
  return (_app, web, options) => {
    if (!options) throw new Error("opsRegistration needs Probot's addHandler (createApp passes it)");
    options.addHandler(
      createOpsHandler({
        queues: web.queues,
        pools: web.settings.pools,
        metrics,
        credentials: dashboardCredentials(web.settings),
        log: web.log,
      }),
    );
  };
}

/**
 * Everything the web process serves, in order. Later parts add their registration here. The
 * metrics observe every webhook decision and are served by the operations registration. The
 * web layer composes the parts: triggers and ops know nothing of the web process.
 */
export function webRegistrations(metrics: OpsMetrics = new OpsMetrics()): Registration[] {
  return [triggersRegistration([metrics.onDecision]), opsRegistration(metrics)];
}
