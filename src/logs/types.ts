import { z } from "zod";
import { ERROR_CLASSES, FAMILIES } from "./classify.js";

const hitSummary = z.object({
  errorClass: z.enum(ERROR_CLASSES),
  family: z.enum(FAMILIES),
  count: z.number().int().positive(),
  /** 1-based line number of the first occurrence. */
  firstLine: z.number().int().positive(),
  message: z.string(),
});

/** The result of triaging one log. Every text in it has been redacted. */
export const triageSchema = z.object({
  /** False when nothing in the log looked like a failure. */
  failureFound: z.boolean(),
  errorClass: z.enum(ERROR_CLASSES),
  family: z.enum(FAMILIES).nullable(),
  /** pytest node ids, GoogleTest Suite.Test names, or bare pytest test names from section headers. */
  failingTests: z.array(z.string()),
  /** Failing tests seen beyond the kept list. */
  failingTestsOmitted: z.number().int().nonnegative(),
  /** The line that names the failure, as printed (cleaned of timestamps and colours). */
  primary: z
    .object({
      line: z.number().int().positive(),
      step: z.string().nullable(),
      test: z.string().nullable(),
      message: z.string(),
    })
    .nullable(),
  /** Normalized error signature: volatile parts replaced by placeholders. */
  signature: z.string(),
  /** 12 hex digits; equal for two logs of the same failure. */
  fingerprint: z.string().regex(/^[0-9a-f]{12}$/),
  /** One entry per family seen, in order of importance. */
  hits: z.array(hitSummary),
  /** Messages of `##[error]` lines (GitHub's own annotations), first few. */
  errorAnnotations: z.array(z.string()),
  /** Failure blocks with context, within the size budget. */
  excerpt: z.string(),
  stats: z.object({
    lines: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    blocks: z.number().int().nonnegative(),
    blocksDropped: z.number().int().nonnegative(),
  }),
});

export type Triage = z.infer<typeof triageSchema>;

export interface TriageOptions {
  /** Byte budget of the excerpt (default 12 KB). */
  excerptBudget?: number;
  /** Lines of context kept before and after a failure line (default 6 and 10). */
  contextBefore?: number;
  contextAfter?: number;
  /** Caps that bound memory whatever the log size. */
  maxFailingTests?: number;
  maxBlocks?: number;
  maxLineLength?: number;
}
