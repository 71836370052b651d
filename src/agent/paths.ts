import { lstat, realpath } from "node:fs/promises";
import path from "node:path";

/**
 * Path confinement for the agent's file tools. The pure check works on text (no `..`
 * escape, no absolute path outside the workspace); the shell part follows symlinks through
 * the nearest existing ancestor, so a link that points out of the workspace is refused even
 * for a file that does not exist yet.
 */

export class PathError extends Error {
  override name = "PathError";
}

/** True when `child` is `root` or inside it (both absolute and normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/**
 * Resolve a path the model gave against the workspace, on text only. Throws PathError when it
 * leaves the workspace or touches the repository's `.git` folder (hooks and config there run
 * code when the harness commits).
 */
export function confineLexically(workspace: string, requested: string): { abs: string; rel: string } {
  if (typeof requested !== "string" || requested.length === 0) throw new PathError("path is empty");
  if (requested.includes("\0")) throw new PathError("path contains a NUL byte");
  const root = path.resolve(workspace);
  const abs = path.resolve(root, requested);
  if (!isInside(root, abs)) {
    throw new PathError(
      `path "${requested}" is outside the workspace; use a path relative to the repository root`,
    );
  }
  const rel = path.relative(root, abs);
  const first = rel.split(path.sep)[0];
  if (first === ".git")
    throw new PathError(`path "${requested}" is inside .git, which the tools do not touch`);
  return { abs, rel: rel === "" ? "." : rel };
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Full check: lexical confinement, then the real path of the target (or of its nearest existing
 * ancestor, for a file about to be created) must stay inside the real workspace.
 */
export async function confinePath(
  workspace: string,
  requested: string,
): Promise<{ abs: string; rel: string }> {
  const { abs, rel } = confineLexically(workspace, requested);
  const realRoot = await realpath(workspace);
  let probe = abs;
  while (!(await exists(probe))) {
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  let real: string;
  try {
    real = await realpath(probe);
  } catch {
    // A dangling symlink: its target does not exist, so we cannot prove where it points.
    throw new PathError(`path "${requested}" goes through a broken symlink`);
  }
  if (!isInside(realRoot, real)) {
    throw new PathError(`path "${requested}" resolves outside the workspace through a symlink`);
  }
  const realRel = path.relative(realRoot, real);
  if (realRel.split(path.sep)[0] === ".git") {
    throw new PathError(`path "${requested}" resolves into .git, which the tools do not touch`);
  }
  return { abs, rel };
}
