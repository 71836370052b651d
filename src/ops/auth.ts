import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** HTTP Basic credentials for the admin pages; null turns the pages off. */
export interface BasicCredentials {
  user: string;
  password: string;
}

export function dashboardCredentials(settings: {
  AUTOFIX_DASHBOARD_USER?: string | undefined;
  AUTOFIX_DASHBOARD_PASSWORD?: string | undefined;
}): BasicCredentials | null {
  const user = settings.AUTOFIX_DASHBOARD_USER;
  const password = settings.AUTOFIX_DASHBOARD_PASSWORD;
  return user && password ? { user, password } : null;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Check an Authorization header against the credentials in constant time: both sides are
 * hashed first (equal lengths for timingSafeEqual, and no length leak), and the user and the
 * password are both compared whatever the first result is.
 */
export function checkBasicAuth(header: string | undefined, expected: BasicCredentials): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  const decoded = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
  const colon = decoded.indexOf(":");
  const user = colon >= 0 ? decoded.slice(0, colon) : "";
  const password = colon >= 0 ? decoded.slice(colon + 1) : "";
  const userOk = timingSafeEqual(sha256(user), sha256(expected.user));
  const passwordOk = timingSafeEqual(sha256(password), sha256(expected.password));
  return m !== null && colon >= 0 && userOk && passwordOk;
}

/**
 * Browsers resend Basic credentials to a site by themselves, so another site could make a
 * signed-in browser POST to the dashboard (retry, remove, pause a queue). A state-changing
 * request must come from this origin: Sec-Fetch-Site same-origin, or an Origin that matches Host.
 * Clients that send neither header (curl, scripts) are not browsers and pass.
 */
export function isCrossSiteWrite(req: IncomingMessage): boolean {
  const method = (req.method ?? "GET").toUpperCase();
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return false;
  const site = req.headers["sec-fetch-site"];
  if (typeof site === "string") return site !== "same-origin" && site !== "none";
  const origin = req.headers.origin;
  if (typeof origin !== "string") return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}
