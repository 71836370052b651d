import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { redact, redactKeepingLines } from "../../shared/redact.js";
import { confinePath } from "../paths.js";
import { defineTool, fail, ok, relPath } from "./define.js";
import { openInWorkspace, readOpened } from "./fs-safe.js";

/** The tools that look without changing anything: list_files, read_file, search. */

const MAX_READ_LINES = 2000;
const MAX_READ_CHARS = 60_000;
const MAX_LIST_ENTRIES = 400;
const MAX_SEARCH_LINES = 200;

export const listFilesTool = defineTool({
  name: "list_files",
  description:
    "List files and folders under a folder of the repository (folders end with /, symlinks with @).",
  schema: z.strictObject({
    path: z.string().min(1).default(".").describe("Folder to list, relative to the repository root"),
    depth: z.number().int().min(1).max(6).default(2).describe("How many levels to descend"),
  }),
  async run(input, ctx) {
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
          if (depth > 1 && e.name !== "node_modules")
            await walk(path.join(dir, e.name), `${name}/`, depth - 1);
        } else out.push(name);
      }
    };
    const st = await lstat(abs);
    if (!st.isDirectory()) return fail(`${rel} is not a folder`);
    await walk(abs, rel === "." ? "" : `${rel}/`, input.depth);
    if (more) out.push(`[... more entries; list a subfolder to see them]`);
    return ok(out.length ? out.join("\n") : "(empty folder)");
  },
});

export const readFileTool = defineTool({
  name: "read_file",
  description: "Read a text file with line numbers, whole or a line range.",
  schema: z.strictObject({
    path: relPath,
    start_line: z.number().int().min(1).optional().describe("First line to read (1-based)"),
    end_line: z.number().int().min(1).optional().describe("Last line to read (inclusive)"),
  }),
  async run(input, ctx) {
    const file = await openInWorkspace(ctx.workspace, input.path, { mode: "read" });
    const rel = file.rel;
    let buf: Buffer;
    try {
      buf = await readOpened(file, ctx.signal);
    } finally {
      await file.fh.close();
    }
    if (buf.subarray(0, 8000).includes(0)) return fail(`${rel} is a binary file (${buf.length} bytes)`);
    // Redact before the cuts below (line range, character limit), keeping line numbers right.
    const lines = redactKeepingLines(buf.toString("utf8")).split("\n");
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
  },
});

export const searchTool = defineTool({
  name: "search",
  description: "Search file contents (git grep when available) for a regular expression or fixed string.",
  schema: z.strictObject({
    pattern: z.string().min(1).describe("Extended regular expression, or a fixed string when fixed is true"),
    fixed: z.boolean().default(false),
    ignore_case: z.boolean().default(false),
    path: z.string().min(1).default(".").describe("Folder or file to search in"),
  }),
  async run(input, ctx) {
    const { rel } = await confinePath(ctx.workspace, input.path);
    const inGit = await lstat(path.join(ctx.workspace, ".git")).then(
      () => true,
      () => false,
    );
    const flags = [input.fixed ? "-F" : "-E", ...(input.ignore_case ? ["-i"] : [])];
    // A subprocess, never a JavaScript RegExp: a pathological pattern cannot block the event loop.
    const argv = inGit
      ? [
          "git",
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
        ]
      : ["grep", "-r", "-n", "-I", "--exclude-dir=.git", ...flags, "-e", input.pattern, "--", rel];
    const r = await ctx.executor.run(argv, {
      cwd: ctx.workspace,
      timeoutMs: 30_000,
      signal: ctx.signal,
      headBytes: 0,
      tailBytes: 16 * 1024 * 1024,
    });
    if (r.exitCode === 1) return ok("no matches");
    if (r.exitCode !== 0)
      return fail(`search failed: ${r.stderr.slice(0, 500) || (r.timedOut ? "timed out" : "cancelled")}`);
    const lines = redact(String(r.stdout)).split("\n");
    const shown = lines.slice(0, MAX_SEARCH_LINES).map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l));
    if (lines.length > MAX_SEARCH_LINES)
      shown.push(`[... ${lines.length - MAX_SEARCH_LINES} more matching lines; narrow the search]`);
    return ok(shown.join("\n"));
  },
});
