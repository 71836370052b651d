import { chmod, lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Tool } from "@anthropic-ai/sdk/resources/messages/messages";
import { z } from "zod";
import type { CommandResult, JobExecutor } from "../sandbox/executor.js";
import { clip } from "./output.js";
import { confinePath, isInside, PathError } from "./paths.js";

/**
 * The agent's tools: zod input schemas (published to the model as JSON schema) and handlers.
 * Every path goes through confinePath; commands go through the injected runner (own process
 * group, scrubbed environment, timeout, the phase's AbortSignal).
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

export interface ToolDef {
  name: string;
  description: string;
  schema: z.ZodType;
  run(input: unknown, ctx: ToolContext): Promise<ToolOutcome>;
}

const MAX_READ_LINES = 2000;
const MAX_READ_CHARS = 60_000;
const MAX_LIST_ENTRIES = 400;
const MAX_SEARCH_LINES = 200;
const MAX_TOOL_CHARS = 30_000;

const ok = (content: string): ToolOutcome => ({ content, isError: false });
const fail = (content: string): ToolOutcome => ({ content, isError: true });

function isProtected(ctx: ToolContext, rel: string): string | undefined {
  return ctx.protectedPaths.find((p) =>
    isInside(path.resolve(ctx.workspace, p), path.resolve(ctx.workspace, rel)),
  );
}

// ---- schemas ----

const relPath = z.string().min(1).describe("Path relative to the repository root");

export const listFilesInput = z.strictObject({
  path: z.string().min(1).default(".").describe("Folder to list, relative to the repository root"),
  depth: z.number().int().min(1).max(6).default(2).describe("How many levels to descend"),
});

export const readFileInput = z.strictObject({
  path: relPath,
  start_line: z.number().int().min(1).optional().describe("First line to read (1-based)"),
  end_line: z.number().int().min(1).optional().describe("Last line to read (inclusive)"),
});

export const searchInput = z.strictObject({
  pattern: z.string().min(1).describe("Extended regular expression, or a fixed string when fixed is true"),
  fixed: z.boolean().default(false),
  ignore_case: z.boolean().default(false),
  path: z.string().min(1).default(".").describe("Folder or file to search in"),
});

export const writeFileInput = z.strictObject({
  path: relPath,
  content: z.string(),
  executable: z.boolean().default(false).describe("Make the file executable (for run_test.sh)"),
});

export const editFileInput = z.strictObject({
  path: relPath,
  old_string: z.string().min(1).describe("Exact text to replace; must occur exactly once"),
  new_string: z.string(),
});

export const runCommandInput = z.strictObject({
  command: z.string().min(1).describe("Run with bash -c in the repository root"),
  timeout_seconds: z.number().int().min(1).max(86_400).optional().describe("Time limit for this command"),
});

export const gitDiffInput = z.strictObject({
  path: z.string().min(1).optional().describe("Limit the diff to this path"),
  stat: z.boolean().default(false).describe("Only a summary of changed files"),
});

export const reproduceFinishInput = z.strictObject({
  test_dir: relPath.describe("The test folder holding tests/, README.md and run_test.sh"),
  command: z.string().min(1).describe("The command that runs the test from the repository root"),
  failure_mode: z.string().min(1).max(2000).describe("Short description of how the failure shows"),
});
export type ReproduceFinish = z.infer<typeof reproduceFinishInput>;

export const fixFinishInput = z.strictObject({
  summary: z.string().min(1).max(4000),
  root_cause: z.string().min(1).max(8000),
  changes: z.string().min(1).max(8000).describe("What was changed, file by file"),
  performance: z.string().min(1).max(4000).describe("Performance impact, measured where possible"),
});
export type FixFinish = z.infer<typeof fixFinishInput>;

// ---- handlers ----

async function listFiles(input: z.infer<typeof listFilesInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const { abs, rel } = await confinePath(ctx.workspace, input.path);
  const out: string[] = [];
  let more = false;
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const e of entries) {
      if (e.name === ".git") continue;
      if (out.length >= MAX_LIST_ENTRIES) {
        more = true;
        return;
      }
      const name = `${prefix}${e.name}`;
      if (e.isSymbolicLink()) out.push(`${name}@`);
      else if (e.isDirectory()) {
        out.push(`${name}/`);
        if (depth > 1 && e.name !== "node_modules") await walk(path.join(dir, e.name), `${name}/`, depth - 1);
      } else out.push(name);
    }
  };
  const st = await lstat(abs);
  if (!st.isDirectory()) return fail(`${rel} is not a folder`);
  await walk(abs, rel === "." ? "" : `${rel}/`, input.depth);
  if (more) out.push(`[... more entries; list a subfolder to see them]`);
  return ok(out.length ? out.join("\n") : "(empty folder)");
}

async function readFileTool(input: z.infer<typeof readFileInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const { abs, rel } = await confinePath(ctx.workspace, input.path);
  const st = await lstat(abs).catch(() => null);
  if (!st) return fail(`${rel} does not exist`);
  if (!st.isFile() && !st.isSymbolicLink()) return fail(`${rel} is not a file`);
  const buf = await readFile(abs);
  if (buf.subarray(0, 8000).includes(0)) return fail(`${rel} is a binary file (${buf.length} bytes)`);
  const lines = buf.toString("utf8").split("\n");
  const start = input.start_line ?? 1;
  const end = Math.min(input.end_line ?? lines.length, lines.length, start + MAX_READ_LINES - 1);
  if (start > lines.length)
    return fail(`${rel} has ${lines.length} lines; start_line ${start} is past the end`);
  let text = lines
    .slice(start - 1, end)
    .map((l, i) => `${String(start + i).padStart(5)}  ${l}`)
    .join("\n");
  if (text.length > MAX_READ_CHARS)
    text = `${text.slice(0, MAX_READ_CHARS)}\n[... cut at ${MAX_READ_CHARS} characters]`;
  const note =
    end < lines.length || start > 1
      ? `\n[lines ${start}-${end} of ${lines.length}; use start_line/end_line for more]`
      : "";
  return ok(`${text}${note}`);
}

async function search(input: z.infer<typeof searchInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const { rel } = await confinePath(ctx.workspace, input.path);
  const inGit = await lstat(path.join(ctx.workspace, ".git")).then(
    () => true,
    () => false,
  );
  const flags = [input.fixed ? "-F" : "-E", ...(input.ignore_case ? ["-i"] : [])];
  // A subprocess, never a JavaScript RegExp: a pathological pattern cannot block the event loop.
  const [cmd, args]: [string, string[]] = inGit
    ? [
        "git",
        [
          "-c",
          "core.fsmonitor=false",
          "grep",
          "-n",
          "-I",
          "--untracked",
          "--no-color",
          ...flags,
          "-e",
          input.pattern,
          "--",
          rel,
        ],
      ]
    : ["grep", ["-r", "-n", "-I", "--exclude-dir=.git", ...flags, "-e", input.pattern, "--", rel]];
  const r = await ctx.executor.run([cmd, ...args], {
    cwd: ctx.workspace,
    timeoutMs: 30_000,
    signal: ctx.signal,
    headBytes: 0,
    tailBytes: 16 * 1024 * 1024,
  });
  if (r.exitCode === 1) return ok("no matches");
  if (r.exitCode !== 0)
    return fail(`search failed: ${r.stderr.slice(0, 500) || (r.timedOut ? "timed out" : "cancelled")}`);
  const lines = String(r.stdout).split("\n");
  const shown = lines.slice(0, MAX_SEARCH_LINES).map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l));
  if (lines.length > MAX_SEARCH_LINES)
    shown.push(`[... ${lines.length - MAX_SEARCH_LINES} more matching lines; narrow the search]`);
  return ok(shown.join("\n"));
}

async function writeFileTool(input: z.infer<typeof writeFileInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const { abs, rel } = await confinePath(ctx.workspace, input.path);
  const guard = isProtected(ctx, rel);
  if (guard) return fail(`${rel} is part of the frozen reproduction (${guard}); it cannot be changed`);
  const st = await lstat(abs).catch(() => null);
  if (st?.isDirectory()) return fail(`${rel} is a folder`);
  await mkdir(path.dirname(abs), { recursive: true });
  // Recheck after creating parents: a parent created concurrently could be a link.
  await confinePath(ctx.workspace, input.path);
  await writeFile(abs, input.content);
  if (input.executable) await chmod(abs, 0o755);
  return ok(
    `wrote ${rel} (${Buffer.byteLength(input.content)} bytes${input.executable ? ", executable" : ""})`,
  );
}

/** Exact, unique replacement. Pure: returns the new text or why not. */
export function replaceUnique(
  text: string,
  oldString: string,
  newString: string,
): { ok: true; text: string } | { ok: false; reason: string } {
  const first = text.indexOf(oldString);
  if (first < 0)
    return { ok: false, reason: "old_string was not found; read the file again and copy the text exactly" };
  const second = text.indexOf(oldString, first + 1);
  if (second >= 0) {
    let count = 0;
    for (let i = text.indexOf(oldString); i >= 0; i = text.indexOf(oldString, i + 1)) count++;
    return {
      ok: false,
      reason: `old_string occurs ${count} times; include more surrounding lines so it is unique`,
    };
  }
  return { ok: true, text: text.slice(0, first) + newString + text.slice(first + oldString.length) };
}

async function editFile(input: z.infer<typeof editFileInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const { abs, rel } = await confinePath(ctx.workspace, input.path);
  const guard = isProtected(ctx, rel);
  if (guard) return fail(`${rel} is part of the frozen reproduction (${guard}); it cannot be changed`);
  const text = await readFile(abs, "utf8").catch(() => null);
  if (text === null) return fail(`${rel} does not exist or cannot be read`);
  const r = replaceUnique(text, input.old_string, input.new_string);
  if (!r.ok) return fail(`${rel}: ${r.reason}`);
  await writeFile(abs, r.text);
  return ok(`edited ${rel}`);
}

/** How a command result reads to the model. Pure. */
export function formatCommandResult(r: CommandResult, timeoutMs: number): string {
  const status = r.cancelled
    ? "cancelled"
    : r.timedOut
      ? `timed out after ${Math.round(timeoutMs / 1000)} s; the process tree was killed`
      : r.exitCode === null
        ? `killed by ${r.signal}`
        : `exit code ${r.exitCode}`;
  return `${status} (${(r.durationMs / 1000).toFixed(1)} s)\n${r.output || "(no output)"}`;
}

async function runCommandTool(
  input: z.infer<typeof runCommandInput>,
  ctx: ToolContext,
): Promise<ToolOutcome> {
  const timeoutMs = Math.min(
    ctx.commandTimeoutMs,
    (input.timeout_seconds ?? Number.POSITIVE_INFINITY) * 1000,
  );
  const r = await ctx.executor.run(input.command, {
    cwd: ctx.workspace,
    timeoutMs,
    signal: ctx.signal,
    ...(ctx.killGraceMs !== undefined ? { killGraceMs: ctx.killGraceMs } : {}),
  });
  return { content: formatCommandResult(r, timeoutMs), isError: r.timedOut || r.cancelled };
}

async function gitDiff(input: z.infer<typeof gitDiffInput>, ctx: ToolContext): Promise<ToolOutcome> {
  const rel = input.path ? (await confinePath(ctx.workspace, input.path)).rel : ".";
  const base = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"];
  const opts = {
    cwd: ctx.workspace,
    timeoutMs: 30_000,
    signal: ctx.signal,
    headBytes: 0,
    tailBytes: 64 * 1024 * 1024,
  };
  const diff = await ctx.executor.run(
    ["git", ...base, "diff", "--no-color", ...(input.stat ? ["--stat"] : []), "HEAD", "--", rel],
    opts,
  );
  if (diff.exitCode !== 0) return fail(`git diff failed: ${diff.stderr.slice(0, 500)}`);
  const untracked = await ctx.executor.run(
    ["git", ...base, "ls-files", "--others", "--exclude-standard", "--", rel],
    opts,
  );
  const extra = untracked.stdout.trim();
  const text = [
    diff.stdout.replace(/\n$/, "") || "(no changes to tracked files)",
    extra ? `untracked files:\n${extra}` : "",
  ]
    .filter(Boolean)
    .join("\n\n");
  return ok(clip(text, MAX_TOOL_CHARS));
}

const finishOutcome = (input: unknown): ToolOutcome => ({
  content: "finish received",
  isError: false,
  finish: input,
});

// ---- registry ----

export const COMMON_TOOLS: ToolDef[] = [
  {
    name: "list_files",
    description:
      "List files and folders under a folder of the repository (folders end with /, symlinks with @).",
    schema: listFilesInput,
    run: (i, c) => listFiles(i as z.infer<typeof listFilesInput>, c),
  },
  {
    name: "read_file",
    description: "Read a text file with line numbers, whole or a line range.",
    schema: readFileInput,
    run: (i, c) => readFileTool(i as z.infer<typeof readFileInput>, c),
  },
  {
    name: "search",
    description: "Search file contents (git grep when available) for a regular expression or fixed string.",
    schema: searchInput,
    run: (i, c) => search(i as z.infer<typeof searchInput>, c),
  },
  {
    name: "write_file",
    description: "Create or overwrite a file with the given content; parent folders are created.",
    schema: writeFileInput,
    run: (i, c) => writeFileTool(i as z.infer<typeof writeFileInput>, c),
  },
  {
    name: "edit_file",
    description: "Replace one exact, unique occurrence of old_string with new_string in a file.",
    schema: editFileInput,
    run: (i, c) => editFile(i as z.infer<typeof editFileInput>, c),
  },
  {
    name: "run_command",
    description:
      "Run a shell command (bash -c) in the repository root with a time limit. Returns the exit code and the output (long output keeps its beginning and end).",
    schema: runCommandInput,
    run: (i, c) => runCommandTool(i as z.infer<typeof runCommandInput>, c),
  },
  {
    name: "git_diff",
    description: "Show uncommitted changes against HEAD, and list new untracked files.",
    schema: gitDiffInput,
    run: (i, c) => gitDiff(i as z.infer<typeof gitDiffInput>, c),
  },
];

export function finishTool(phase: "reproduce" | "fix"): ToolDef {
  return phase === "reproduce"
    ? {
        name: "finish",
        description:
          "End phase 1: give the test folder, the command that runs it and the failure mode. The harness then runs the command on the unchanged code.",
        schema: reproduceFinishInput,
        run: async (i) => finishOutcome(i),
      }
    : {
        name: "finish",
        description:
          "End phase 2: describe the fix. The harness then runs the frozen reproduction several times in a row and checks the test is unchanged.",
        schema: fixFinishInput,
        run: async (i) => finishOutcome(i),
      };
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
  const parsed = def.schema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`);
    return fail(`invalid input for ${name}: ${issues.join("; ")}`);
  }
  try {
    const out = await def.run(parsed.data, ctx);
    return out.finish !== undefined ? out : { ...out, content: clip(out.content, MAX_TOOL_CHARS * 2) };
  } catch (err) {
    if (err instanceof PathError) return fail(err.message);
    const e = err as NodeJS.ErrnoException;
    return fail(`${name} failed: ${e.code ? `${e.code}: ` : ""}${e.message}`);
  }
}
