import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { issueLines } from "../shared/zod-messages.js";
import { ALLOWED_CONTAINER_OPTIONS, parseContainerOptions, workdirProblem } from "./container-options.js";
import { ciOnFixSchema, limitsSchema } from "./limits.js";
import { DEFAULT_POOL_RULES, POOL_NAMES } from "./pools.js";

/** Where the per-repository configuration lives (read through Probot's context.config). */
export const REPO_CONFIG_FILE = "autofix.yml";
export const REPO_CONFIG_PATH = `.github/${REPO_CONFIG_FILE}`;

const poolName = z.string().refine((p) => POOL_NAMES.includes(p), {
  message: `must be one of the known pools: ${POOL_NAMES.join(", ")}`,
});

const poolRule = z
  .object({
    pool: poolName,
    labels: z.array(z.string().min(1)).min(1).optional(),
    pattern: z
      .string()
      .refine(
        (p) => {
          try {
            new RegExp(p);
            return true;
          } catch {
            return false;
          }
        },
        { message: "is not a valid regular expression" },
      )
      .optional(),
  })
  .refine((r) => r.labels !== undefined || r.pattern !== undefined, {
    message: "needs `labels` (all must be present) or `pattern` (a regular expression)",
  });

const minutes = z
  .number()
  .positive()
  .max(24 * 60);

const budgetsSchema = z.object({
  reproduce_minutes: minutes.default(5),
  fix_minutes: minutes.default(10),
  pr_minutes: minutes.default(5),
  /** Builds (5-10 min for tt-metal) count against this budget, not the phase's. */
  build_minutes: minutes.default(15),
  /** Model turns per phase. */
  max_turns: z.number().int().positive().max(1000).default(60),
  /** Input + output tokens for the whole job. */
  max_tokens: z.number().int().positive().default(2_000_000),
  /** Estimated model cost cap for the whole job, in US dollars. */
  max_cost_usd: z.number().positive().default(20),
  /** Per-command timeout for commands the agent runs. */
  command_timeout_minutes: minutes.default(10),
});

const stabilitySchema = z.object({
  /** Deterministic failures: the reproduction must fail this many times out of as many runs on the base commit. */
  deterministic_failures: z.number().int().min(1).max(20).default(2),
  /** Deterministic failures: consecutive passes needed after the fix. */
  deterministic_passes: z.number().int().min(1).max(50).default(2),
  /** Non-deterministic: stress runs on the base commit; at least one must fail. */
  stress_runs: z.number().int().min(1).max(100).default(5),
  /** Non-deterministic: consecutive passes needed after the fix. */
  nondeterministic_passes: z.number().int().min(1).max(100).default(5),
});

const commandsSchema = z.object({
  /** Run once in a fresh workspace before the agent starts (for example `./build_metal.sh`). */
  build: z.string().default(""),
  /** How the repository's tests are usually run; given to the agent as a hint. */
  test: z.string().default(""),
  /** Reset the cards between jobs; empty for none (`tt-smi -r`, Galaxy: `tt-smi -glx_reset_auto`). */
  reset: z.string().default(""),
});

const workflowMapEntry = z.object({
  /** Glob patterns of changed paths (`ttnn/cpp/**`). */
  paths: z.array(z.string().min(1)).min(1),
  /** Workflow names or files to recommend when a changed path matches. */
  workflows: z.array(z.string().min(1)).min(1),
});

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Mounts are the operator's (worker settings), never the repository's. */
const refusedMounts = z
  .unknown()
  .refine((v) => v === undefined, {
    message:
      "mounts are not taken from the repository: the worker's operator sets them (AUTOFIX_SANDBOX_MOUNTS, per pool)",
  })
  .optional();

/** One environment: what the CI job's container had. Every field optional; merged base < pool < runner label. */
const environmentEntry = {
  /** The image (must match the worker's AUTOFIX_SANDBOX_IMAGE_PREFIXES, or be one of its pool images). */
  image: z
    .string()
    .min(1)
    .max(300)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, "is not an image reference")
    .optional(),
  /** Container options from a short allowlist (--shm-size, -e/--env, -w/--workdir). */
  options: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      const p = parseContainerOptions(v);
      if (p.refused.length > 0)
        ctx.addIssue({
          code: "custom",
          message: `refused: ${p.refused.join(", ")}; only ${ALLOWED_CONTAINER_OPTIONS} are allowed (cards, hugepages and mounts come from the worker)`,
        });
    }),
  /** Variables every command gets (TT_METAL_HOME=/work, ...). */
  env: z
    .record(
      z.string().regex(ENV_NAME, "is not a variable name"),
      z.union([z.string(), z.number(), z.boolean()]),
    )
    .optional(),
  /** Where the workspace is mounted inside the container and commands start (tt-metal: /work). */
  workdir: z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      const problem = v === undefined ? null : workdirProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  mounts: refusedMounts,
  volumes: refusedMounts,
};

const environmentSchema = z.object({
  ...environmentEntry,
  /** Per pool: `n150: { image: ..., env: ... }`. */
  pools: z.record(poolName, z.object(environmentEntry)).default({}),
  /** Per runner label set (all labels present), first match wins; over the pool's. */
  runner_labels: z
    .array(z.object({ labels: z.array(z.string().min(1)).min(1), ...environmentEntry }))
    .default([]),
});

export type EnvironmentConfig = z.infer<typeof environmentSchema>;

const artifactSchema = z.object({
  /**
   * Artifact name pattern: `*` matches any text, `{sha}` the job's full commit SHA
   * (`TTMetal_build_any_*_{sha}_*`).
   */
  name: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9._*{}-]+$/, "may hold letters, digits, . _ - * and {sha}"),
  /** Files inside the downloaded artifact to unpack (globs with `*`); default: every file. */
  archives: z.array(z.string().min(1)).default([]),
  /** Folder inside the workspace to unpack into (relative, default the repository root). */
  destination: z
    .string()
    .default(".")
    .refine((d) => !d.startsWith("/") && !d.split(/[\\/]/).includes(".."), {
      message: "must be a folder inside the workspace (relative, no ..)",
    }),
});

const artifactsSchema = z.object({
  /** Artifacts tried in order; the first one found at the job's commit is used. */
  build: z.array(artifactSchema).default([]),
  /** Also use an artifact of a successful run of the same commit when the failing run has none. */
  from_successful_runs: z.boolean().default(true),
});

export type ArtifactRule = z.infer<typeof artifactSchema>;

export const repoConfigSchema = z.object({
  /** Label that starts a job when added to an issue or pull request. */
  trigger_label: z.string().min(1).max(50).default("autofix"),
  /** Consecutive failing runs (by final attempt) of the same failure before a job starts. */
  failure_threshold: z.number().int().min(1).max(50).default(3),
  /** Branches whose CI failures are watched; empty means the repository's default branch. */
  watched_branches: z.array(z.string().min(1)).default([]),
  /** Set to false to turn off the repeated-failure trigger for this repository. */
  ci_trigger: z.boolean().default(true),
  /** Runner-label to pool mapping, first match wins; appended before the built-in TT defaults. */
  pool_rules: z.array(poolRule).default([]),
  /** Pool for jobs whose labels match no rule (comment and label triggers use it too). */
  default_pool: poolName.default("cpu"),
  budgets: budgetsSchema.default(budgetsSchema.parse({})),
  stability: stabilitySchema.default(stabilitySchema.parse({})),
  /** Bot accounts (login, with or without the [bot] suffix) allowed to trigger jobs. */
  allowed_bots: z.array(z.string().min(1)).default([]),
  commands: commandsSchema.default(commandsSchema.parse({})),
  recommended_workflows: z.array(workflowMapEntry).default([]),
  /** Keep the reproduction test in the PR diff (the original framework kept it out). */
  include_test_in_pr: z.boolean().default(false),
  /** Loop breakers of automatic jobs: per fingerprint per window, open Autofix PRs per repository. */
  limits: limitsSchema.default(limitsSchema.parse({})),
  /** Workflows dispatched on the fix branch (those that do not run on push). */
  ci_on_fix: ciOnFixSchema.default(ciOnFixSchema.parse({})),
  /** The CI job's container: image, options, env, workdir (per pool or runner label). */
  environment: environmentSchema.default(environmentSchema.parse({})),
  /** CI build artifacts unpacked into the workspace instead of building. */
  artifacts: artifactsSchema.default(artifactsSchema.parse({})),
  /**
   * The push trigger: a pushed branch whose head commit adds or changes one of these files (an
   * info.json, relative to the repository root) starts a job on that commit. Empty turns it off.
   */
  info_json_paths: z
    .array(
      z
        .string()
        .min(1)
        .max(300)
        .regex(
          /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[^\0\\]+\.json$/,
          "must be a .json file inside the repository, like .github/autofix/info.json",
        ),
    )
    .max(10)
    .default([".github/autofix/info.json", ".github/scripts/codebase-improvements/info.json"]),
});

export type RepoConfig = z.infer<typeof repoConfigSchema>;

export const DEFAULT_REPO_CONFIG: RepoConfig = repoConfigSchema.parse({});

/** The effective pool rules: the repository's own first, then the TT defaults. */
export function effectivePoolRules(config: RepoConfig) {
  return [...config.pool_rules, ...DEFAULT_POOL_RULES];
}

export type RepoConfigResult =
  | { ok: true; config: RepoConfig; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

/** Unknown keys anywhere in the file become warnings: found by a strict pass over the same shape. */
function strictShape(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodDefault) return strictShape(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodOptional) return strictShape(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodArray) return z.array(strictShape(schema.element as z.ZodType));
  if (schema instanceof z.ZodObject) {
    const shape: Record<string, z.ZodType> = {};
    for (const [k, v] of Object.entries(schema.shape)) shape[k] = strictShape(v as z.ZodType).optional();
    return z.strictObject(shape);
  }
  return z.any();
}

const strictRepoConfig = strictShape(repoConfigSchema);

/** Validate an already-parsed config object (what Probot's context.config returns). */
export function validateRepoConfig(raw: unknown): RepoConfigResult {
  const input = raw ?? {};
  const warnings: string[] = [];
  const strict = strictRepoConfig.safeParse(input);
  if (!strict.success) {
    for (const issue of strict.error.issues) {
      if (issue.code === "unrecognized_keys") {
        warnings.push(...issueLines({ issues: [issue] } as z.ZodError, input).map((l) => `${l} (ignored)`));
      }
    }
  }
  const parsed = repoConfigSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: issueLines(parsed.error, input), warnings };
  return { ok: true, config: parsed.data, warnings };
}

/** Parse YAML text of `.github/autofix.yml` and validate it. */
export function parseRepoConfig(text: string): RepoConfigResult {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [`not valid YAML: ${(err as Error).message.split("\n")[0]}`], warnings: [] };
  }
  if (raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw))) {
    return {
      ok: false,
      errors: ["the file must be a mapping of settings (key: value), not a list or a scalar"],
      warnings: [],
    };
  }
  return validateRepoConfig(raw);
}

/** One environment after merging: what a job's container gets from the repository's config. */
export interface ResolvedEnvironmentConfig {
  image?: string;
  env: Record<string, string>;
  options: string[];
  workdir?: string;
}

/**
 * The environment the config gives a job: the base entry, then the pool's, then the first
 * runner-label entry whose labels are all present. env merges, options add up, image and
 * workdir are replaced. null when the config says nothing. Pure.
 */
export function environmentFor(
  config: RepoConfig,
  pool: string,
  runnerLabels: readonly string[] = [],
): ResolvedEnvironmentConfig | null {
  const e = config.environment;
  const have = new Set(runnerLabels.map((l) => l.toLowerCase()));
  const entries = [
    e,
    e.pools[pool],
    e.runner_labels.find((r) => r.labels.every((l) => have.has(l.toLowerCase()))),
  ].filter((x): x is NonNullable<typeof x> => !!x);
  const out: ResolvedEnvironmentConfig = { env: {}, options: [] };
  let said = false;
  for (const entry of entries) {
    if (entry.image) out.image = entry.image;
    if (entry.workdir) out.workdir = entry.workdir.replace(/\/+$/, "");
    for (const [k, v] of Object.entries(entry.env ?? {})) out.env[k] = String(v);
    if (entry.options !== undefined)
      out.options.push(...(typeof entry.options === "string" ? [entry.options] : entry.options));
    said ||= !!entry.image || !!entry.workdir || !!entry.env || entry.options !== undefined;
  }
  return said ? out : null;
}
