import type { Tool } from "@anthropic-ai/sdk/resources/messages/messages";
import { z } from "zod";
import { redact } from "../../shared/redact.js";
import { clip } from "../output.js";
import { PathError } from "../paths.js";
import { fail, MAX_TOOL_CHARS, type ToolContext, type ToolDef, type ToolOutcome } from "./define.js";
import { fixFinishTool, reproduceFinishTool } from "./finish.js";
import { gitDiffTool } from "./git-diff.js";
import { listFilesTool, readFileTool, searchTool } from "./read.js";
import { runCommandTool } from "./run-command.js";
import { editFileTool, writeFileTool } from "./write.js";

/**
 * The tools of each phase, their API form, and the one place a tool call runs. Every path goes
 * through confinePath; commands go through the job's executor (own process group, scrubbed
 * environment, timeout, the phase's AbortSignal).
 */

/** The tools every phase has, in the order the model sees them. */
const COMMON_TOOLS: readonly ToolDef[] = [
  listFilesTool,
  readFileTool,
  searchTool,
  writeFileTool,
  editFileTool,
  runCommandTool,
  gitDiffTool,
];

function finishTool(phase: "reproduce" | "fix"): ToolDef {
  return phase === "reproduce" ? reproduceFinishTool : fixFinishTool;
}

export function toolsForPhase(phase: "reproduce" | "fix"): ToolDef[] {
  return [...COMMON_TOOLS, finishTool(phase)];
}

/**
 * The tool list as the Messages API wants it. The last definition carries the cache
 * breakpoint, so tools and system prompt form one cached prefix. Pure.
 */
export function toApiTools(defs: readonly ToolDef[]): Tool[] {
  return defs.map((d, i) => {
    const { $schema: _drop, ...schema } = z.toJSONSchema(d.schema, { io: "input" }) as Record<
      string,
      unknown
    >;
    const tool: Tool = {
      name: d.name,
      description: d.description,
      input_schema: schema as Tool["input_schema"],
    };
    if (i === defs.length - 1) tool.cache_control = { type: "ephemeral" };
    return tool;
  });
}

/** Thrown when the phase's signal fires before a tool call returns. */
class ToolStopped extends Error {}

/**
 * A tool call raced against the phase's signal: a FIFO, a slow disk or a stuck handler cannot
 * hold the run past its budget. The abandoned call's later result or error is dropped.
 */
function raceSignal<T>(work: Promise<T>, signal: AbortSignal, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () =>
      reject(new ToolStopped(`${name} stopped: the phase ended (cancelled or out of time)`));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Run one tool call: unknown names and invalid input come back as errors for the model;
 * path refusals too. Other exceptions are reported the same way: the loop never crashes on a
 * tool.
 */
export async function executeTool(
  defs: readonly ToolDef[],
  name: string,
  input: unknown,
  ctx: ToolContext,
): Promise<ToolOutcome> {
  const def = defs.find((d) => d.name === name);
  if (!def) return fail(`unknown tool "${name}"; available: ${defs.map((d) => d.name).join(", ")}`);
  const call = def.bind(input);
  if (!call.ok) return fail(`invalid input for ${name}: ${call.issues.join("; ")}`);
  if (ctx.signal.aborted) return fail(`${name} was not run: the phase ended`);
  try {
    const out = await raceSignal(call.run(ctx), ctx.signal, name);
    // Redact before clipping: a cut can leave half a token no rule recognises, or a key's
    // BEGIN line without its END.
    return out.finish !== undefined
      ? out
      : { ...out, content: clip(redact(out.content), MAX_TOOL_CHARS * 2) };
  } catch (err) {
    if (err instanceof PathError || err instanceof ToolStopped) return fail(err.message);
    const e = err as NodeJS.ErrnoException;
    return fail(`${name} failed: ${e.code ? `${e.code}: ` : ""}${e.message}`);
  }
}
