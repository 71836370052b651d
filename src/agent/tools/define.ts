import { z } from "zod";
import type { JobExecutor } from "../../sandbox/executor.js";

/**
 * What a tool is: a name, a description and a zod input schema (published to the model as JSON
 * schema), and a handler that gets the input already parsed by that schema. `defineTool` binds
 * the two, so a handler sees `z.infer` of its own schema and the registry can hold tools of
 * different schemas behind one type.
 */

export interface ToolContext {
  workspace: string;
  /** The phase's signal: fires on cancel and at the phase deadline. */
  signal: AbortSignal;
  /** Upper bound for one command. */
  commandTimeoutMs: number;
  /** The job's executor: every command a tool runs goes through it. */
  executor: JobExecutor;
  /** Paths (relative to the workspace) the file tools refuse to change: the frozen test. */
  protectedPaths: string[];
  killGraceMs?: number;
}

export interface ToolOutcome {
  content: string;
  isError: boolean;
  /** Set by `finish`: the validated input, handed to the phase. */
  finish?: unknown;
}

/** The model's input checked against a tool's schema: ready to run, or what was wrong with it. */
export type BoundCall =
  | { ok: true; run: (ctx: ToolContext) => Promise<ToolOutcome> }
  | { ok: false; issues: string[] };

/** A tool as the registry holds it, whatever its schema. */
export interface ToolDef {
  readonly name: string;
  readonly description: string;
  readonly schema: z.ZodType;
  /** Parse raw input with the tool's schema and bind it to the handler. */
  bind(input: unknown): BoundCall;
}

export interface ToolSpec<S extends z.ZodType> {
  name: string;
  description: string;
  schema: S;
  run: (input: z.infer<S>, ctx: ToolContext) => Promise<ToolOutcome>;
}

export function defineTool<S extends z.ZodType>(spec: ToolSpec<S>): ToolDef {
  return {
    name: spec.name,
    description: spec.description,
    schema: spec.schema,
    bind(input) {
      const parsed = spec.schema.safeParse(input ?? {});
      if (!parsed.success) {
        return {
          ok: false,
          issues: parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`),
        };
      }
      const data = parsed.data;
      return { ok: true, run: (ctx) => spec.run(data, ctx) };
    },
  };
}

/** Most characters a tool's text (git diff) keeps; results are clipped at twice this. */
export const MAX_TOOL_CHARS = 30_000;

export const ok = (content: string): ToolOutcome => ({ content, isError: false });
export const fail = (content: string): ToolOutcome => ({ content, isError: true });

/** The schema of a path argument. */
export const relPath = z.string().min(1).describe("Path relative to the repository root");
