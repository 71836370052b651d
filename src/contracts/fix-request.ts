import { z } from "zod";

/**
 * What a person (or the CI detector) asks for: the fields of the original info.json, in
 * camelCase. Shared by FixJob and the info.json loader so both follow the same rules.
 */
export const fixRequestSchema = z
  .object({
    deterministic: z.boolean(),
    prompt: z.string().trim().min(1, "must describe what to fix"),
    /** GitHub Actions run or job URL; wins over rawLogs when both are given. */
    url: z.string().url().optional(),
    /** Pasted error logs or stack trace. */
    rawLogs: z.string().min(1).optional(),
    /** Path of an existing reproduction test, relative to the repository root; skips phase 1. */
    existingTestPath: z.string().min(1).optional(),
    /**
     * The person asks for a fix that may change tests and their configuration (skip markers,
     * deleted tests, pytest or CI config), which the harness refuses otherwise.
     */
    allowTestChanges: z.boolean().optional(),
    /**
     * The command the failed CI step ran and the job's timeout, read from the workflow at the
     * run's commit: the starting point of the reproduction (CI-triggered jobs).
     */
    ciCommand: z
      .object({
        /** `workflow <path>@<sha> job <id> step "<name>"`. */
        source: z.string().min(1).max(500),
        run: z.string().min(1).max(20_000),
        timeoutMinutes: z.number().positive().optional(),
        /** The step's working-directory, when it set one. */
        workingDirectory: z.string().max(500).optional(),
      })
      .optional(),
  })
  .refine((r) => r.url !== undefined || r.rawLogs !== undefined, {
    message: "needs a log source: an Actions URL or raw logs",
    path: ["url"],
  });

export type FixRequest = z.infer<typeof fixRequestSchema>;
