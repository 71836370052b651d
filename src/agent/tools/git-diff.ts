import { z } from "zod";
import { redact } from "../../shared/redact.js";
import { clip } from "../output.js";
import { confinePath } from "../paths.js";
import { defineTool, fail, MAX_TOOL_CHARS, ok } from "./define.js";

/** git_diff: uncommitted changes against HEAD, plus new untracked files. */

export const gitDiffTool = defineTool({
  name: "git_diff",
  description: "Show uncommitted changes against HEAD, and list new untracked files.",
  schema: z.strictObject({
    path: z.string().min(1).optional().describe("Limit the diff to this path"),
    stat: z.boolean().default(false).describe("Only a summary of changed files"),
  }),
  async run(input, ctx) {
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
    // Redact before clipping: a cut could leave half a key or token no rule recognises.
    return ok(clip(redact(text), MAX_TOOL_CHARS));
  },
});
