import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { git } from "../agent/git.js";
import type { JobExecutor } from "../sandbox/executor.js";
import { CODEOWNERS_PATHS, ownersOfFiles, parseCodeowners } from "./codeowners.js";

/** Owners of the changed files from the first CODEOWNERS GitHub would use. */
export async function codeOwners(workspace: string, files: readonly string[]): Promise<string[]> {
  for (const p of CODEOWNERS_PATHS) {
    try {
      const text = await readFile(join(workspace, p), "utf8");
      return ownersOfFiles(files, parseCodeowners(text));
    } catch {
      // next location
    }
  }
  return [];
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
