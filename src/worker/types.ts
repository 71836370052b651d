import type { ProbotOctokit } from "probot";
import type { RepoConfig } from "../config/repo-config.js";
import type { FixJob } from "../contracts/fix-job.js";
import type { Outcome } from "../contracts/outcome.js";
import type { JobExecutor } from "../sandbox/executor.js";
import type { StatusStep, StatusView } from "../status/model.js";

/** The final states a job can end in: the shared outcome. */
export type FinalState = Outcome;

export interface Spend {
  tokens: number;
  costUsd: number;
}

/** A progress event from the fix pipeline: a phase change, a step detail, spend so far. */
export interface JobProgress {
  /** The whole checklist as it stands now (replaces the previous one). */
  steps?: StatusStep[];
  /** One line under the header ("Reproducing: 1/2 runs failed as expected"). */
  message?: string;
  spend?: Spend;
  links?: StatusView["links"];
}

/** What the fix pipeline ends with. */
export interface JobOutcome {
  state: FinalState;
  /** Shown in the status comment: the result, or the reason for a give-up. */
  message: string;
  links?: { pullRequest?: string; report?: string };
  steps?: StatusStep[];
  spend?: Spend;
  /** A collapsed block at the end of the comment (report summary). */
  details?: { summary: string; body: string };
  /** The comment's headline when the state's own would mislead (a proven fix not published). */
  headline?: string;
  /** Numbers for /metrics: wall time per phase that ran, and the harness's gate checks. */
  metrics?: { phases: Array<{ name: string; ms: number }>; gates: { passed: number; total: number } };
}

/** What a finished job adds to the shared job metrics (src/ops/job-metrics.ts). */
export interface FinishedJob {
  pool: string;
  state: FinalState;
  phases: Array<{ name: string; ms: number }>;
  gates: { passed: number; total: number };
  tokens: number;
  costUsd: number;
}

/** Git access for the harness's push (see pushBranch): never put the token in argv or URLs. */
export interface JobGit {
  remoteUrl: string;
  /** The repository's mirror: the fix commit is imported into it and pushed from there. */
  pushFrom: string;
  /** WorkspaceManager.helperPath: the credential helper pushBranch passes to git. */
  helperPath: string;
  /** A current installation token (minted or refreshed on demand; registered with the redactor). */
  token(): Promise<string>;
}

export interface JobContext {
  job: FixJob;
  /** BullMQ job id. */
  jobId: string;
  /** 1-based attempt number, and how many there may be. */
  attempt: number;
  maxAttempts: number;
  /** Runs every command of the job, in the job's repository at job.target.headSha, with the job's env. */
  executor: JobExecutor;
  /**
   * Makes the executor for one gate check's fresh checkout (a folder next to the job's
   * repository): the job's sandbox, cards and env around that folder. See
   * RunFixAgentOptions.gateExecutor.
   */
  gateExecutor?: (dir: string) => Promise<JobExecutor>;
  /**
   * `.github/autofix.yml` at the job's commit, read once by the worker (readRunConfig); null
   * when it is invalid, so the pipeline reports its errors.
   */
  config: RepoConfig | null;
  /** Aborted on cancel, worker shutdown deadline or job timeout: pass it to every command and model call. */
  signal: AbortSignal;
  /** Aborted when the worker starts shutting down: stop at the end of the current phase if you can. */
  drain: AbortSignal;
  octokit: ProbotOctokit;
  onProgress(update: JobProgress): void;
  git: JobGit;
  /** Cards this job holds (device node names); the executor pins commands to them. */
  cards: string[];
}

/** The fix pipeline (the agent harness supplies it). */
export type JobRunner = (ctx: JobContext) => Promise<JobOutcome>;

/** Installation-scoped GitHub access for one job. */
export interface GitHubAccess {
  octokit: ProbotOctokit;
  token(): Promise<string>;
}

export type GitHubFactory = (installationId: number) => Promise<GitHubAccess>;

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
