import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";

/**
 * The reproduction's fingerprint. The gates compare git objects (`testObjectHash`: the test
 * folder's tree in a commit), so only what is committed counts. `hashTestPath` (sha256 over
 * the files on disk, run artefacts left out) is kept for tools that look at a folder outside
 * git; no gate uses it.
 *
 * Run artefacts: the folder's top-level `logs/` (the test writes its logs there) and caches
 * that test runners create next to the tests. They are never committed.
 */

const CACHE_DIRS = new Set(["__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"]);

/** Is this path (relative to the test folder, `/`-separated) a run artefact? Pure. */
export function isRunArtefact(rel: string): boolean {
  const parts = rel.split("/");
  if (parts[0] === "logs" && parts.length > 1) return true;
  if (parts.some((p) => CACHE_DIRS.has(p))) return true;
  return /\.py[co]$/.test(rel);
}

/** Hash a list of entries (pure): the order of the input does not matter. */
export function hashEntries(entries: ReadonlyArray<{ rel: string; mode: string; content: Buffer }>): string {
  const h = createHash("sha256");
  for (const e of [...entries].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) {
    h.update(`${e.rel}\0${e.mode}\0${e.content.length}\0`);
    h.update(e.content);
  }
  return `sha256:${h.digest("hex")}`;
}

async function collect(
  root: string,
  rel: string,
  out: Array<{ rel: string; mode: string; content: Buffer }>,
) {
  const abs = rel ? path.join(root, rel) : root;
  const st = await lstat(abs);
  if (st.isSymbolicLink()) {
    out.push({ rel, mode: "link", content: Buffer.from(await readlink(abs)) });
  } else if (st.isDirectory()) {
    for (const name of (await readdir(abs)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      if (isRunArtefact(child)) continue;
      await collect(root, child, out);
    }
  } else if (st.isFile()) {
    out.push({ rel, mode: st.mode & 0o111 ? "x" : "-", content: await readFile(abs) });
  }
}

/** Hash a test folder or a single test file (absolute path). */
export async function hashTestPath(abs: string): Promise<string> {
  const entries: Array<{ rel: string; mode: string; content: Buffer }> = [];
  const st = await lstat(abs);
  if (st.isDirectory()) await collect(abs, "", entries);
  else await collect(path.dirname(abs), path.basename(abs), entries);
  return hashEntries(entries);
}

/**
 * The frozen test as git sees it: `tree:<id>` of the test folder (`blob:<id>` of a test file)
 * in a commit, or null when the commit has nothing there. What the gates compare: the object
 * id covers every committed file's path, mode and content, and nothing that is not committed
 * (run artefacts, ignored or untracked files, index flags) can enter it.
 */
export async function testObjectHash(
  git: (args: string[], opts: { allowFailure: true }) => Promise<{ stdout: string; exitCode: number }>,
  commit: string,
  rel: string,
): Promise<string | null> {
  const spec = `${commit}:${rel === "." ? "" : rel.replace(/\/+$/, "")}`;
  const id = await git(["rev-parse", "--verify", "-q", spec], { allowFailure: true });
  if (id.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(id.stdout.trim())) return null;
  const type = await git(["cat-file", "-t", id.stdout.trim()], { allowFailure: true });
  if (type.exitCode !== 0) return null;
  return `${type.stdout.trim()}:${id.stdout.trim()}`;
}
