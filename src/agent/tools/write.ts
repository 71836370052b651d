import { chmod, lstat, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { confinePath, isInside } from "../paths.js";
import { defineTool, fail, ok, relPath, type ToolContext } from "./define.js";

/** The tools that change files: write_file and edit_file. Neither touches the frozen test. */

/** The protected path (the frozen test) that `rel` falls in, if any. */
function protectedBy(ctx: ToolContext, rel: string): string | undefined {
  return ctx.protectedPaths.find((p) =>
    isInside(path.resolve(ctx.workspace, p), path.resolve(ctx.workspace, rel)),
  );
}

const frozen = (rel: string, guard: string) =>
  fail(`${rel} is part of the frozen reproduction (${guard}); it cannot be changed`);

export const writeFileTool = defineTool({
  name: "write_file",
  description: "Create or overwrite a file with the given content; parent folders are created.",
  schema: z.strictObject({
    path: relPath,
    content: z.string(),
    executable: z.boolean().default(false).describe("Make the file executable (for run_test.sh)"),
  }),
  async run(input, ctx) {
    const { abs, rel } = await confinePath(ctx.workspace, input.path);
    const guard = protectedBy(ctx, rel);
    if (guard) return frozen(rel, guard);
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
  },
});

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

export const editFileTool = defineTool({
  name: "edit_file",
  description: "Replace one exact, unique occurrence of old_string with new_string in a file.",
  schema: z.strictObject({
    path: relPath,
    old_string: z.string().min(1).describe("Exact text to replace; must occur exactly once"),
    new_string: z.string(),
  }),
  async run(input, ctx) {
    const { abs, rel } = await confinePath(ctx.workspace, input.path);
    const guard = protectedBy(ctx, rel);
    if (guard) return frozen(rel, guard);
    const text = await readFile(abs, "utf8").catch(() => null);
    if (text === null) return fail(`${rel} does not exist or cannot be read`);
    const r = replaceUnique(text, input.old_string, input.new_string);
    if (!r.ok) return fail(`${rel}: ${r.reason}`);
    await writeFile(abs, r.text);
    return ok(`edited ${rel}`);
  },
});
