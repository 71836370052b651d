import { z } from "zod";

/**
 * Repeated-failure detection, as pure functions over the recorded history of one workflow on
 * one branch. A run is counted by its final attempt (a later attempt replaces the record), so a
 * failure that a retry clears never starts work. Infrastructure failures and cancelled jobs
 * neither count nor break a streak. A success of the job ends its streak.
 */

export const jobResultSchema = z.object({
  name: z.string(),
  jobId: z.number(),
  conclusion: z.string(),
  labels: z.array(z.string()),
  infra: z.boolean(),
  /** For failures: fingerprint of (workflow, job, normalized error signature). */
  fingerprint: z.string().optional(),
  signature: z.string().optional(),
  errorClass: z.string().optional(),
  url: z.string().optional(),
  /** The failing test the job's annotations name first, when they name one (people's-work search). */
  testId: z.string().optional(),
});
export type JobResult = z.infer<typeof jobResultSchema>;

export const runRecordSchema = z.object({
  runId: z.number(),
  runNumber: z.number(),
  attempt: z.number(),
  headSha: z.string(),
  conclusion: z.string(),
  jobs: z.array(jobResultSchema),
  /** Jobs that failed in an earlier attempt of this run and passed in the final one: flaky. */
  retryCleared: z.array(z.string()),
  url: z.string(),
});
export type RunRecord = z.infer<typeof runRecordSchema>;

const FAILED = new Set(["failure", "timed_out"]);

export function isFailedConclusion(c: string | null | undefined): boolean {
  return c != null && FAILED.has(c);
}

/** Keep the record with the highest attempt for a run. */
export function mergeRecord(existing: RunRecord | undefined, incoming: RunRecord): RunRecord {
  if (!existing || incoming.attempt >= existing.attempt) return incoming;
  return existing;
}

export interface Streak {
  fingerprint: string;
  jobName: string;
  /** Consecutive counted runs, newest first, that failed this way. */
  runs: RunRecord[];
  count: number;
  /** The oldest run of the streak: one job per streak. */
  startRunId: number;
  nondeterministic: boolean;
  /** Why it is classified so, for the prompt and the tracking issue. */
  flakinessEvidence: string[];
}

/** The current streak of one failure (fingerprint) of one job, from the newest run back. */
export function streakOf(history: RunRecord[], jobName: string, fingerprint: string): Streak {
  const runs = [...history].sort((a, b) => b.runNumber - a.runNumber);
  const inStreak: RunRecord[] = [];
  let i = 0;
  for (; i < runs.length; i++) {
    const run = runs[i]!;
    const job = run.jobs.find((j) => j.name === jobName);
    if (!job || job.infra || job.conclusion === "cancelled" || job.conclusion === "skipped") continue; // neither counts nor breaks
    if (isFailedConclusion(job.conclusion) && job.fingerprint === fingerprint) {
      inStreak.push(run);
      continue;
    }
    break; // passed, or failed differently: the streak ends here
  }
  const evidence: string[] = [];
  for (const run of runs) {
    if (run.retryCleared.includes(jobName))
      evidence.push(`run #${run.runNumber}: failed, then passed on a re-run`);
  }
  for (const run of runs.slice(i)) {
    const job = run.jobs.find((j) => j.name === jobName);
    if (job?.conclusion === "success") {
      evidence.push(`run #${run.runNumber}: passed recently`);
      break;
    }
  }
  const oldest = inStreak[inStreak.length - 1];
  return {
    fingerprint,
    jobName,
    runs: inStreak,
    count: inStreak.length,
    startRunId: oldest?.runId ?? 0,
    nondeterministic: evidence.length > 0,
    flakinessEvidence: evidence,
  };
}

/** Streaks of every counted failure in the newest run, longest first. */
export function currentStreaks(history: RunRecord[], newest: RunRecord): Streak[] {
  const out: Streak[] = [];
  for (const job of newest.jobs) {
    if (job.infra || !isFailedConclusion(job.conclusion) || !job.fingerprint) continue;
    out.push(streakOf(history, job.name, job.fingerprint));
  }
  return out.sort((a, b) => b.count - a.count);
}

/** Steps whose failure means the runner or checkout broke, not the code. */
const INFRA_STEPS =
  /^(set up job|set up runner|initialize containers|checkout|run actions\/checkout.*|post .*|complete job|download artifact.*)$/i;

export function isInfraStep(stepName: string | null | undefined): boolean {
  return !!stepName && INFRA_STEPS.test(stepName.trim());
}
