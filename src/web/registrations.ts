import { opsRegistration } from "../ops/http.js";
import { OpsMetrics } from "../ops/metrics.js";
import { triggersRegistration } from "../triggers/index.js";
import type { Registration } from "./app.js";

/**
 * Everything the web process serves, in order. Later parts add their registration here. The
 * metrics observe every webhook decision and are served by the operations registration.
 */
export function webRegistrations(metrics: OpsMetrics = new OpsMetrics()): Registration[] {
  return [triggersRegistration([metrics.onDecision]), opsRegistration(metrics)];
}
