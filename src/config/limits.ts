import { z } from "zod";

/**
 * `limits:` in `.github/autofix.yml`: the loop breakers of automatic (CI) jobs
 * (src/triggers/loop-breakers.ts). People's `/autofix` and the trigger label are never limited.
 */
export const limitsSchema = z.object({
  /** Automatic jobs per failure fingerprint within `window_days`; the next one starts nothing and says why. */
  jobs_per_fingerprint: z.number().int().min(1).max(100).default(3),
  /** The window of `jobs_per_fingerprint`, in days. */
  window_days: z.number().int().min(1).max(365).default(7),
  /** Open Autofix PRs per repository before automatic jobs pause. */
  open_prs: z.number().int().min(1).max(100).default(5),
});

export type LimitsConfig = z.infer<typeof limitsSchema>;

/** `ci_on_fix:` in `.github/autofix.yml`: CI of the fix branch beyond what its push starts. */
export const ciOnFixSchema = z.object({
  /**
   * Workflows (file names such as `t3000-unit-tests.yaml`, or ids) that do not run on push:
   * started with `workflow_dispatch` on the fix branch when its PR opens or gets a new commit.
   * Needs the app's `actions: write` permission; without it the dispatch is skipped and recorded.
   */
  dispatch: z
    .array(
      z.union([
        z.string().regex(/^[\w./-]+\.ya?ml$|^\d+$/, "must be a workflow file name or id"),
        z.number().int().positive(),
      ]),
    )
    .max(20)
    .default([]),
});

export type CiOnFixConfig = z.infer<typeof ciOnFixSchema>;
