import { z } from "zod";
import { issueLines } from "../shared/zod-messages.js";
import { fixRequestSchema } from "./fix-request.js";
import { POOL_NAMES } from "./pools.js";

/** Bump when the shape changes incompatibly; workers refuse versions they do not know. */
export const FIX_JOB_VERSION = 1;

const login = z.string().min(1).max(100);
const sha = z.string().regex(/^[0-9a-f]{40}$/, "must be a full 40-character commit SHA");

/** Where a job's environment came from: `workflow <path>@<sha> job <id>`, `autofix.yml` or `worker default`. */
export const jobEnvironmentSchema = z.object({
  image: z.string().min(1).max(300).optional(),
  env: z.record(z.string(), z.string()).default({}),
  /** Container options that passed the allowlist (src/config/container-options.ts). */
  options: z.array(z.string()).default([]),
  /** Where the workspace is mounted inside the container (tt-metal: /work). */
  workdir: z.string().min(1).optional(),
  source: z.string().min(1).max(400),
  /** What was not taken, and why (expressions, refused options, a fallback). */
  notes: z.array(z.string().max(500)).max(20).default([]),
});

export type JobEnvironment = z.infer<typeof jobEnvironmentSchema>;

/**
 * The job that travels through Redis from the web process to a worker. BullMQ stores it in
 * clear text: never put a token or secret in it. Workers mint installation tokens themselves.
 */
export const fixJobSchema = z.object({
  version: z.literal(FIX_JOB_VERSION),
  source: z.enum(["comment", "label", "ci", "push"]),
  repository: z.object({
    owner: login,
    name: z.string().min(1).max(100),
    installationId: z.number().int().positive(),
    defaultBranch: z.string().min(1),
  }),
  target: z.discriminatedUnion("kind", [
    z.object({
      /** Where the status comment lives: the issue or PR that was commented/labelled, or the tracking issue. */
      kind: z.enum(["issue", "pull_request"]),
      number: z.number().int().positive(),
      /** The exact commit to work on: never a moving branch name. */
      headSha: sha,
      /** Branch the SHA was taken from (informational). */
      headRef: z.string().min(1).optional(),
    }),
    z.object({
      /**
       * A pushed commit that adds or changes an info.json (the push trigger): the status comment
       * is a commit comment on `headSha`, and there is no issue number.
       */
      kind: z.literal("commit"),
      headSha: sha,
      /** The branch that was pushed. */
      headRef: z.string().min(1),
      /** The info.json path the request was read from, at `headSha`. */
      infoPath: z.string().min(1).max(400).optional(),
    }),
  ]),
  request: fixRequestSchema,
  pool: z
    .string()
    .refine((p) => POOL_NAMES.includes(p), { message: `must be one of ${POOL_NAMES.join(", ")}` }),
  /** Dedup key: one job per fingerprint while it is queued or running. */
  fingerprint: z.string().min(1).max(200),
  requestedBy: login,
  /** The status comment kept current for this job. */
  statusCommentId: z.number().int().positive().optional(),
  /**
   * The container environment the job asks for, decided at trigger time: the failed CI job's
   * own `container:` (when literal), the repository's autofix.yml `environment:`, or nothing
   * (the worker's default). The worker still checks the image against its allowlist.
   */
  environment: jobEnvironmentSchema.optional(),
  /** For CI-triggered jobs: the failure that crossed the threshold. */
  ci: z
    .object({
      workflowName: z.string(),
      jobName: z.string(),
      runId: z.number().int(),
      jobId: z.number().int().optional(),
      runnerLabels: z.array(z.string()),
      errorSignature: z.string(),
      streak: z.number().int().positive(),
      /** The workflow file of the run (`.github/workflows/x.yml`). */
      workflowPath: z.string().optional(),
    })
    .optional(),
  createdAt: z.string().datetime(),
});

export type FixJob = z.infer<typeof fixJobSchema>;

export type FixJobParse = { ok: true; job: FixJob } | { ok: false; problems: string[] };

/** Validate job data read back from Redis (or built by a trigger) with readable problems. */
export function parseFixJob(data: unknown): FixJobParse {
  const r = fixJobSchema.safeParse(data);
  if (r.success) return { ok: true, job: r.data };
  return { ok: false, problems: issueLines(r.error, data) };
}

export type FixJobTarget = FixJob["target"];

/** The issue or PR number of a job's target; undefined for a commit (push-triggered) job. Pure. */
export function targetNumber(job: Pick<FixJob, "target">): number | undefined {
  return job.target.kind === "commit" ? undefined : job.target.number;
}

/**
 * The target's key: `owner/repo#12` for an issue or PR, `owner/repo@<sha>` for a commit: the
 * status marker's text (the outbox's locationKey) and the key of the last request. Pure.
 */
export function jobTargetKey(job: Pick<FixJob, "repository" | "target">): string {
  const repo = `${job.repository.owner}/${job.repository.name}`;
  return job.target.kind === "commit" ? `${repo}@${job.target.headSha}` : `${repo}#${job.target.number}`;
}

/** A short human label for logs and comments: `owner/repo#12 (n150)`, `owner/repo@abc1234 (cpu)`. */
export function describeJob(job: FixJob): string {
  const repo = `${job.repository.owner}/${job.repository.name}`;
  const where =
    job.target.kind === "commit"
      ? `${repo}@${job.target.headSha.slice(0, 7)}`
      : `${repo}#${job.target.number}`;
  return `${where} (${job.pool})`;
}
