import { lstat, mkdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { confinePath, isInside } from "../paths.js";
import { defineTool, fail, ok, relPath, type ToolContext } from "./define.js";
import { openInWorkspace, readOpened, writeOpened } from "./fs-safe.js";

/** The tools that change files: write_file and edit_file. Neither touches the frozen test. */

/** The protected path (the frozen test) that `rel` falls in, if any. */
function protectedBy(ctx: ToolContext, rel: string): string | undefined {
  return ctx.protectedPaths.find((p) =>
    isInside(path.resolve(ctx.workspace, p), path.resolve(ctx.workspace, rel)),
  );
}

const frozenText = (rel: string, guard: string) =>
  `${rel} is part of the frozen reproduction (${guard}); it cannot be changed`;
const frozen = (rel: string, guard: string) => fail(frozenText(rel, guard));

/** Why a file whose real path (links inside the workspace resolved) is `realRel` may not change. */
function refusalFor(ctx: ToolContext, rel: string, realRel: string): string | undefined {
  const guard = protectedBy(ctx, realRel);
  return guard ? frozenText(rel, guard) : undefined;
}

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
    // Opened without following links, checked on the descriptor (which also catches a parent
    // created or swapped concurrently as a link), and refused if the real path is protected.
    const file = await openInWorkspace(ctx.workspace, input.path, {
      mode: "write",
      refuse: (realRel) => refusalFor(ctx, rel, realRel),
    });
    try {
      await writeOpened(file, input.content);
      if (input.executable) await file.fh.chmod(0o755);
    } finally {
      await file.fh.close();
    }
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
    const { rel } = await confinePath(ctx.workspace, input.path);
    const guard = protectedBy(ctx, rel);
    if (guard) return frozen(rel, guard);
    const file = await openInWorkspace(ctx.workspace, input.path, {
      mode: "edit",
      refuse: (realRel) => refusalFor(ctx, rel, realRel),
    });
    try {
      const text = (await readOpened(file, ctx.signal)).toString("utf8");
      const r = replaceUnique(text, input.old_string, input.new_string);
      if (!r.ok) return fail(`${rel}: ${r.reason}`);
      if (ctx.signal.aborted) return fail(`${rel} was not edited: the phase ended`);
      await writeOpened(file, r.text);
    } finally {
      await file.fh.close();
    }
    return ok(`edited ${rel}`);
  },
});
