/**
 * Every form of GitHub Actions link people paste, on github.com and on GitHub Enterprise
 * Server hosts. Pure: no network.
 */

import { redact } from "../shared/redact.js";

export type ActionsRef =
  | (RepoRef & { kind: "run"; runId: number; attempt?: number })
  | (RepoRef & { kind: "job"; jobId: number; runId?: number; attempt?: number });

export interface RepoRef {
  /** Host the link points at, e.g. github.com or github.example.com (with :port when given). */
  host: string;
  /** REST API base for that host: https://api.github.com or https://HOST/api/v3. */
  apiBase: string;
  owner: string;
  repo: string;
}

export class ActionsUrlError extends Error {
  override name = "ActionsUrlError";
}

const FORMS = [
  "https://HOST/OWNER/REPO/actions/runs/RUN_ID",
  "https://HOST/OWNER/REPO/actions/runs/RUN_ID/attempts/N",
  "https://HOST/OWNER/REPO/actions/runs/RUN_ID/job/JOB_ID",
  "https://HOST/OWNER/REPO/runs/JOB_ID",
  "https://HOST/OWNER/REPO/pull/N/checks?check_run_id=JOB_ID",
];

const NAME = /^[A-Za-z0-9_.-]+$/;
const ID = /^\d{1,19}$/;

/** The REST API base for a web host. */
export function apiBaseFor(host: string, protocol = "https:"): string {
  const h = host.toLowerCase();
  if (h === "github.com" || h === "www.github.com") return "https://api.github.com";
  return `${protocol}//${host}/api/v3`;
}

function fail(input: string, why: string): never {
  // The message is shown to people and logged: never echo credentials from the input.
  const clean = redact(input.trim().replace(/\/\/[^/@\s]*@/, "//[REDACTED]@"));
  const shown = clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
  throw new ActionsUrlError(
    `not a GitHub Actions link: ${JSON.stringify(shown)} (${why}). Accepted forms:\n  ${FORMS.join("\n  ")}`,
  );
}

function id(input: string, value: string | undefined, what: string): number {
  if (!value || !ID.test(value)) fail(input, `${what} must be a number`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) fail(input, `${what} must be a positive number`);
  return n;
}

/** Parse an Actions run, attempt, job, check-run or PR-checks link. Throws ActionsUrlError. */
export function parseActionsUrl(input: string): ActionsRef {
  const text = input.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail(input, "not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(input, "must start with https://");
  if (url.username || url.password) fail(input, "credentials in the URL are not accepted");
  const host = url.host.toLowerCase().replace(/^www\./, "");
  const parts = url.pathname.split("/").filter(Boolean);
  const [owner, repo, section, ...rest] = parts;
  if (!owner || !repo || !section) fail(input, "expected /OWNER/REPO/actions/runs/...");
  if (!NAME.test(owner) || !NAME.test(repo)) fail(input, "owner or repository name has invalid characters");
  const base: RepoRef = { host, apiBase: apiBaseFor(host, url.protocol), owner, repo };

  if (section === "actions") {
    if (rest[0] !== "runs") fail(input, "expected /actions/runs/RUN_ID");
    const runId = id(input, rest[1], "the run id");
    const tail = rest.slice(2);
    if (tail.length === 0) return { ...base, kind: "run", runId };
    if (tail[0] === "attempts" && tail.length === 2) {
      return { ...base, kind: "run", runId, attempt: id(input, tail[1], "the attempt") };
    }
    if ((tail[0] === "job" || tail[0] === "jobs") && tail.length === 2) {
      return { ...base, kind: "job", runId, jobId: id(input, tail[1], "the job id") };
    }
    fail(input, `unexpected "/${tail.join("/")}" after the run id`);
  }
  if (section === "runs") {
    if (rest.length !== 1) fail(input, "expected /runs/JOB_ID");
    return { ...base, kind: "job", jobId: id(input, rest[0], "the check run id") };
  }
  if (section === "pull") {
    const pr = rest[0];
    if (!pr || !ID.test(pr) || rest[1] !== "checks") fail(input, "expected /pull/N/checks?check_run_id=ID");
    const check = url.searchParams.get("check_run_id");
    if (!check) fail(input, "a pull request checks link names a job only with ?check_run_id=ID");
    return { ...base, kind: "job", jobId: id(input, check, "check_run_id") };
  }
  fail(input, `"/${section}" is not an Actions page`);
}

/** A stable, token-free name for a ref, for humans and for grouping. */
export function describeRef(ref: ActionsRef): string {
  const repo = `${ref.host === "github.com" ? "" : `${ref.host}/`}${ref.owner}/${ref.repo}`;
  if (ref.kind === "run") return `${repo} run ${ref.runId}${ref.attempt ? ` attempt ${ref.attempt}` : ""}`;
  return `${repo} job ${ref.jobId}`;
}
