/**
 * The reproduction's fingerprint. The gates compare git objects (`testObjectHash`: the test
 * folder's tree in a commit), so only what is committed counts.
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
