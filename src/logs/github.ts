/**
 * The imperative shell: reads jobs, logs and annotations from the GitHub REST API with the
 * installation's (or a person's) token. The token travels only in the Authorization header
 * to the API host; the log redirect target (a signed blob URL on another host) gets no token.
 */
import { z } from "zod";
import { redact, redactor } from "../shared/redact.js";
import { triageStream } from "./triage.js";
import type { Triage, TriageOptions } from "./types.js";
import type { ActionsRef, RepoRef } from "./url.js";

export interface ResponseLike {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
  text(): Promise<string>;
  body: unknown;
}

/** The part of WHATWG fetch this module uses; Node's global fetch fits. */
export type FetchLike = (
  url: string,
  init: {
    method?: string;
    headers: Record<string, string>;
    redirect?: "manual" | "follow";
    signal?: AbortSignal;
  },
) => Promise<ResponseLike>;

export interface LogsAccess {
  /** Installation token (from the worker) or a person's token (CLI). Never logged, never in a URL. */
  token: string;
  /** Defaults to the global fetch; tests and the worker may inject their own. */
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** Jobs whose logs are fetched at the same time for a run (default 3). */
  concurrency?: number;
}

export class GitHubLogsError extends Error {
  override name = "GitHubLogsError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(redact(message));
  }
}

const stepSchema = z.object({
  name: z.string(),
  number: z.number().int(),
  conclusion: z.string().nullable().optional(),
});

const jobSchema = z.object({
  id: z.number().int(),
  run_id: z.number().int(),
  run_attempt: z.number().int().optional(),
  name: z.string(),
  labels: z.array(z.string()).default([]),
  status: z.string(),
  conclusion: z.string().nullable(),
  runner_name: z.string().nullable().optional(),
  html_url: z.string().nullable().optional(),
  head_sha: z.string().optional(),
  started_at: z.string().nullable().optional(),
  completed_at: z.string().nullable().optional(),
  steps: z.array(stepSchema).optional(),
});

const runSchema = z.object({
  id: z.number().int(),
  run_attempt: z.number().int().positive().default(1),
  name: z.string().nullable().optional(),
  head_sha: z.string().optional(),
  html_url: z.string().optional(),
});

const jobsPageSchema = z.object({ total_count: z.number().int(), jobs: z.array(jobSchema) });

const annotationSchema = z.object({
  path: z.string().nullable().optional(),
  start_line: z.number().int().nullable().optional(),
  annotation_level: z.string().nullable().optional(),
  title: z.string().nullable().optional(),
  message: z.string().nullable().optional(),
});

export interface JobInfo {
  id: number;
  runId: number;
  runAttempt: number | null;
  name: string;
  labels: string[];
  status: string;
  conclusion: string | null;
  runnerName: string | null;
  url: string | null;
  headSha: string | null;
  failedSteps: string[];
  /** ISO times GitHub reports (absent in older answers). */
  startedAt?: string | null;
  completedAt?: string | null;
}

export interface Annotation {
  level: string;
  message: string;
  path: string | null;
  line: number | null;
  title: string | null;
}

/** One failed job: who ran it, what GitHub said, and the triage of its log. */
export interface JobFailure {
  /** Human label: the job name, or the file/URL of a raw log. */
  label: string;
  job: JobInfo | null;
  annotations: Annotation[];
  triage: Triage;
}

export interface RunFailures {
  runId: number;
  attempt: number;
  /** Jobs of that attempt that did not fail, by conclusion (success, skipped, cancelled, ...). */
  otherJobs: Record<string, number>;
  failures: JobFailure[];
}

/** Conclusions that count as a failed job. */
const FAILED = new Set(["failure", "timed_out", "startup_failure"]);

function fetchOf(access: LogsAccess): FetchLike {
  redactor.addSecret(access.token);
  return access.fetch ?? (globalThis.fetch as unknown as FetchLike);
}

function apiHeaders(access: LogsAccess): Record<string, string> {
  return {
    accept: "application/vnd.github+json",
    authorization: `Bearer ${access.token}`,
    "x-github-api-version": "2022-11-28",
    "user-agent": "autofix-logs",
  };
}

function explain(status: number, what: string): string {
  switch (status) {
    case 401:
      return `${what}: the token was rejected (401); check GITHUB_TOKEN / the app's installation`;
    case 403:
      return `${what}: access denied or rate limited (403); the token needs "actions: read" (and "checks: read" for annotations)`;
    case 404:
      return `${what}: not found (404); the id is wrong or the token cannot see this repository`;
    case 410:
      return `${what}: gone (410); the logs have expired or were deleted`;
    default:
      return `${what}: GitHub answered ${status}`;
  }
}

async function getJson<T>(
  ref: RepoRef,
  path: string,
  schema: z.ZodType<T>,
  access: LogsAccess,
  what: string,
) {
  const res = await fetchOf(access)(`${ref.apiBase}${path}`, {
    headers: apiHeaders(access),
    ...(access.signal ? { signal: access.signal } : {}),
  });
  if (!res.ok) throw new GitHubLogsError(explain(res.status, what), res.status);
  const parsed = schema.safeParse(await res.json());
  if (!parsed.success) {
    throw new GitHubLogsError(`${what}: unexpected answer from GitHub (${parsed.error.issues[0]?.message})`);
  }
  return parsed.data;
}

const repoPath = (ref: RepoRef) => `/repos/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}`;

function toJobInfo(j: z.infer<typeof jobSchema>): JobInfo {
  return {
    id: j.id,
    runId: j.run_id,
    runAttempt: j.run_attempt ?? null,
    name: j.name,
    labels: j.labels,
    status: j.status,
    conclusion: j.conclusion,
    runnerName: j.runner_name ?? null,
    url: j.html_url ?? null,
    headSha: j.head_sha ?? null,
    startedAt: j.started_at ?? null,
    completedAt: j.completed_at ?? null,
    failedSteps: (j.steps ?? []).filter((s) => s.conclusion === "failure").map((s) => s.name),
  };
}

/** Job metadata: name, runner labels and name, conclusion, attempt, failed steps. */
export async function fetchJob(ref: RepoRef, jobId: number, access: LogsAccess): Promise<JobInfo> {
  const j = await getJson(ref, `${repoPath(ref)}/actions/jobs/${jobId}`, jobSchema, access, `job ${jobId}`);
  return toJobInfo(j);
}

/** Check-run annotations of a job (the job id is its check-run id). */
export async function fetchAnnotations(
  ref: RepoRef,
  jobId: number,
  access: LogsAccess,
): Promise<Annotation[]> {
  const list = await getJson(
    ref,
    `${repoPath(ref)}/check-runs/${jobId}/annotations?per_page=50`,
    z.array(annotationSchema),
    access,
    `annotations of job ${jobId}`,
  );
  return list.map((a) => ({
    level: a.annotation_level ?? "failure",
    message: redact(a.message ?? ""),
    path: a.path ?? null,
    line: a.start_line ?? null,
    title: a.title ?? null,
  }));
}

/** Where a URL points, without its query (signed blob URLs carry credentials there). */
function safeUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.origin}${url.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

async function* bodyChunks(body: unknown, what: string): AsyncIterable<Uint8Array> {
  if (!body || typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== "function") {
    throw new GitHubLogsError(`the download of the ${what} has no readable body`);
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    yield typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  }
}

/**
 * Open an Actions download (a job's log, an artifact's zip) as a stream. The API answers 302
 * with a short-lived signed URL on another host; that request goes without the token. Never
 * held whole.
 */
async function openDownload(
  ref: RepoRef,
  apiPath: string,
  what: string,
  access: LogsAccess,
): Promise<AsyncIterable<Uint8Array>> {
  const fetch = fetchOf(access);
  const signal = access.signal ? { signal: access.signal } : {};
  let res = await fetch(`${ref.apiBase}${repoPath(ref)}${apiPath}`, {
    headers: apiHeaders(access),
    redirect: "manual",
    ...signal,
  });
  for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
    const location = res.headers.get("location");
    if (!location || hops >= 3) throw new GitHubLogsError(`${what}: redirect without a usable Location`);
    const target = new URL(location, `${ref.apiBase}/`).toString();
    if (!/^https?:$/.test(new URL(target).protocol))
      throw new GitHubLogsError(`${what}: bad redirect target`);
    res = await fetch(target, { headers: { "user-agent": "autofix-logs" }, redirect: "manual", ...signal });
    if (!res.ok && (res.status < 300 || res.status >= 400)) {
      throw new GitHubLogsError(
        `${explain(res.status, what)} (download from ${safeUrl(target)})`,
        res.status,
      );
    }
  }
  if (!res.ok) throw new GitHubLogsError(explain(res.status, what), res.status);
  return bodyChunks(res.body, what);
}

/** Open a job's log as a stream (see openDownload). */
export function openJobLog(
  ref: RepoRef,
  jobId: number,
  access: LogsAccess,
): Promise<AsyncIterable<Uint8Array>> {
  return openDownload(ref, `/actions/jobs/${jobId}/logs`, `log of job ${jobId}`, access);
}

/** A run's latest attempt number (1 when it was never re-run). */
export async function fetchRunAttempts(
  ref: RepoRef & { runId: number },
  access: LogsAccess,
): Promise<number> {
  const base = `${repoPath(ref)}/actions/runs/${ref.runId}`;
  return (await getJson(ref, base, runSchema, access, `run ${ref.runId}`)).run_attempt;
}

/** Every job of one attempt of a run, whatever its conclusion. */
export async function fetchAttemptJobs(
  ref: RepoRef & { runId: number },
  attempt: number,
  access: LogsAccess,
): Promise<JobInfo[]> {
  const base = `${repoPath(ref)}/actions/runs/${ref.runId}`;
  const jobs: JobInfo[] = [];
  for (let page = 1; page <= 50; page++) {
    const p = await getJson(
      ref,
      `${base}/attempts/${attempt}/jobs?per_page=100&page=${page}`,
      jobsPageSchema,
      access,
      `jobs of run ${ref.runId} attempt ${attempt}`,
    );
    jobs.push(...p.jobs.map(toJobInfo));
    if (p.jobs.length === 0 || jobs.length >= p.total_count) break;
  }
  return jobs;
}

/** Whether a job's conclusion counts as a failure. */
export function isFailedConclusion(conclusion: string | null): boolean {
  return conclusion !== null && FAILED.has(conclusion);
}

/** Triage the log of a job already described (annotations included). */
export function triageJobInfo(
  ref: RepoRef,
  job: JobInfo,
  access: LogsAccess,
  opts: TriageOptions = {},
): Promise<JobFailure> {
  return triageJob(ref, job, access, opts);
}

async function triageJob(
  ref: RepoRef,
  job: JobInfo,
  access: LogsAccess,
  opts: TriageOptions,
): Promise<JobFailure> {
  const [triage, annotations] = await Promise.all([
    openJobLog(ref, job.id, access).then((s) => triageStream(s, opts)),
    // Annotations add context; a missing checks permission must not lose the log.
    fetchAnnotations(ref, job.id, access).catch(() => [] as Annotation[]),
  ]);
  return { label: job.name, job, annotations, triage };
}

/** Fetch and triage one job: metadata, annotations and the streamed log. */
export async function fetchJobLogs(
  ref: RepoRef,
  jobId: number,
  access: LogsAccess,
  opts: TriageOptions = {},
): Promise<JobFailure> {
  const job = await fetchJob(ref, jobId, access);
  return triageJob(ref, job, access, opts);
}

/**
 * Every failed job of a run's final attempt (or of the attempt the link names): a failure a
 * retry cleared does not count.
 */
export async function fetchRunFailures(
  ref: RepoRef & { runId: number; attempt?: number },
  access: LogsAccess,
  opts: TriageOptions = {},
): Promise<RunFailures> {
  const base = `${repoPath(ref)}/actions/runs/${ref.runId}`;
  const attempt =
    ref.attempt ?? (await getJson(ref, base, runSchema, access, `run ${ref.runId}`)).run_attempt;
  const jobs: JobInfo[] = [];
  for (let page = 1; page <= 50; page++) {
    const p = await getJson(
      ref,
      `${base}/attempts/${attempt}/jobs?per_page=100&page=${page}`,
      jobsPageSchema,
      access,
      `jobs of run ${ref.runId} attempt ${attempt}`,
    );
    jobs.push(...p.jobs.map(toJobInfo));
    if (p.jobs.length === 0 || jobs.length >= p.total_count) break;
  }
  const failed = jobs.filter((j) => j.conclusion !== null && FAILED.has(j.conclusion));
  const otherJobs: Record<string, number> = {};
  for (const j of jobs) {
    if (failed.includes(j)) continue;
    const key = j.conclusion ?? j.status;
    otherJobs[key] = (otherJobs[key] ?? 0) + 1;
  }
  const failures = await mapLimit(failed, access.concurrency ?? 3, (j) => triageJob(ref, j, access, opts));
  return { runId: ref.runId, attempt, otherJobs, failures };
}

/** Any Actions link: a job gives one failure, a run all failed jobs of its final attempt. */
export async function fetchFailures(ref: ActionsRef, access: LogsAccess, opts: TriageOptions = {}) {
  if (ref.kind === "job") return [await fetchJobLogs(ref, ref.jobId, access, opts)];
  return (await fetchRunFailures(ref, access, opts)).failures;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}

const artifactSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  size_in_bytes: z.number().int().nonnegative().default(0),
  expired: z.boolean().default(false),
  workflow_run: z
    .object({ id: z.number().int().optional(), head_sha: z.string().optional() })
    .nullable()
    .optional(),
});

export interface ArtifactInfo {
  id: number;
  name: string;
  sizeInBytes: number;
  expired: boolean;
  runId: number;
  headSha: string | null;
}

/** The artifacts a run uploaded (`GET /repos/{o}/{r}/actions/runs/{id}/artifacts`). */
export async function fetchRunArtifacts(
  ref: RepoRef,
  runId: number,
  access: LogsAccess,
): Promise<ArtifactInfo[]> {
  const out: ArtifactInfo[] = [];
  for (let page = 1; page <= 10; page++) {
    const p = await getJson(
      ref,
      `${repoPath(ref)}/actions/runs/${runId}/artifacts?per_page=100&page=${page}`,
      z.object({ total_count: z.number().int(), artifacts: z.array(artifactSchema) }),
      access,
      `artifacts of run ${runId}`,
    );
    out.push(
      ...p.artifacts.map((a) => ({
        id: a.id,
        name: a.name,
        sizeInBytes: a.size_in_bytes,
        expired: a.expired,
        runId: a.workflow_run?.id ?? runId,
        headSha: a.workflow_run?.head_sha ?? null,
      })),
    );
    if (p.artifacts.length === 0 || out.length >= p.total_count) break;
  }
  return out;
}

/** Successful runs of a commit (`GET /repos/{o}/{r}/actions/runs?head_sha=...&status=success`), newest first. */
export async function fetchSuccessfulRunsAt(
  ref: RepoRef,
  sha: string,
  access: LogsAccess,
): Promise<number[]> {
  const p = await getJson(
    ref,
    `${repoPath(ref)}/actions/runs?head_sha=${encodeURIComponent(sha)}&status=success&per_page=30`,
    z.object({ workflow_runs: z.array(z.object({ id: z.number().int(), head_sha: z.string().optional() })) }),
    access,
    `successful runs at ${sha.slice(0, 12)}`,
  );
  return p.workflow_runs.filter((r) => !r.head_sha || r.head_sha === sha).map((r) => r.id);
}

/** Open an artifact's zip (`.../actions/artifacts/{id}/zip`) as a stream (see openDownload). */
export function openArtifactZip(
  ref: RepoRef,
  artifactId: number,
  access: LogsAccess,
): Promise<AsyncIterable<Uint8Array>> {
  return openDownload(ref, `/actions/artifacts/${artifactId}/zip`, `artifact ${artifactId}`, access);
}
