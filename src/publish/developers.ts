import { git } from "../agent/git.js";
import type { JobExecutor } from "../sandbox/executor.js";
import { CODEOWNERS_PATHS, ownersOfFiles, parseCodeowners } from "./codeowners.js";

/**
 * Owners of the changed files from the first CODEOWNERS GitHub would use, as committed at
 * `rev`: read from git through the job's executor, never from the workspace on the host, so
 * a CODEOWNERS the model replaced with a link to a host file reads as nothing.
 */
export async function codeOwners(
  exec: JobExecutor,
  rev: string,
  files: readonly string[],
): Promise<string[]> {
  for (const p of CODEOWNERS_PATHS) {
    const text = await committedText(exec, rev, p);
    if (text !== null) return ownersOfFiles(files, parseCodeowners(text));
  }
  return [];
}

/** A regular file's content as committed at `rev`, or null (absent, a link, a folder). */
export async function committedText(exec: JobExecutor, rev: string, path: string): Promise<string | null> {
  const entry = await git(exec, ["ls-tree", "-z", rev, "--", path], { allowFailure: true });
  const [meta] = entry.stdout.split("\t");
  const [mode, type, sha] = (meta ?? "").split(" ");
  if (entry.exitCode !== 0 || type !== "blob" || (mode !== "100644" && mode !== "100755") || !sha)
    return null;
  const blob = await git(exec, ["cat-file", "blob", sha], { allowFailure: true });
  return blob.exitCode === 0 ? blob.stdout : null;
}

/** The regular files under `path` as committed at `rev` (links left out), at most `limit`. */
export async function committedFiles(
  exec: JobExecutor,
  rev: string,
  path: string,
  limit = 20,
): Promise<Array<{ path: string; content: string }>> {
  const list = await git(exec, ["ls-tree", "-r", "-z", rev, "--", path], { allowFailure: true });
  if (list.exitCode !== 0) return [];
  const out: Array<{ path: string; content: string }> = [];
  for (const line of list.stdout.split("\0").filter(Boolean)) {
    const [meta, file] = line.split("\t");
    const [mode, type, sha] = (meta ?? "").split(" ");
    if (!file || type !== "blob" || (mode !== "100644" && mode !== "100755") || !sha) continue;
    if (file.split("/").some((part) => part === "logs" || part.startsWith("."))) continue;
    const blob = await git(exec, ["cat-file", "blob", sha], { allowFailure: true });
    if (blob.exitCode === 0) out.push({ path: file, content: blob.stdout });
    if (out.length >= limit) break;
  }
  return out;
}

/** People who changed these files recently (by commit count), bots and the app left out. */
export async function recentAuthors(
  exec: JobExecutor,
  files: readonly string[],
  baseSha: string,
  limit = 5,
): Promise<string[]> {
  if (files.length === 0) return [];
  const r = await git(exec, ["log", "-n", "200", "--format=%an <%ae>", baseSha, "--", ...files], {
    allowFailure: true,
  });
  if (r.exitCode !== 0) return [];
  const count = new Map<string, number>();
  for (const line of r.stdout.split("\n")) {
    if (!line || /\[bot\]|noreply@github\.com>$|autofix/i.test(line)) continue;
    count.set(line, (count.get(line) ?? 0) + 1);
  }
  return [...count.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([a]) => a.replace(/ <.*>$/, ""));
}
