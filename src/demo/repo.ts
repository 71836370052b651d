import { cp, mkdir, readdir } from "node:fs/promises";
import { execa } from "execa";

/**
 * The demo's repository: the files of `examples/<name>/repo/` copied into a fresh folder and
 * committed as one base commit on `main`, with a fixed author and date so the base commit is
 * the same on every machine. Hooks, signing and the person's identity settings are not used.
 */

const DEMO_IDENTITY = {
  GIT_AUTHOR_NAME: "Demo Author",
  GIT_AUTHOR_EMAIL: "demo@example.com",
  GIT_COMMITTER_NAME: "Demo Author",
  GIT_COMMITTER_EMAIL: "demo@example.com",
  GIT_AUTHOR_DATE: "2026-01-05T10:00:00Z",
  GIT_COMMITTER_DATE: "2026-01-05T10:00:00Z",
  GIT_CONFIG_NOSYSTEM: "1",
};

const SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "-c", "init.templateDir="];

async function git(cwd: string, args: string[]): Promise<string> {
  const r = await execa("git", [...SAFE, ...args], { cwd, env: DEMO_IDENTITY, reject: false });
  if (r.exitCode !== 0) throw new Error(`git ${args[0]} failed in ${cwd}: ${String(r.stderr).trim()}`);
  return String(r.stdout).trim();
}

/** Create the demo repository at `target` (must be empty or missing); returns the base commit. */
export async function createDemoRepo(source: string, target: string): Promise<string> {
  await mkdir(target, { recursive: true });
  if ((await readdir(target)).length > 0) throw new Error(`${target} is not empty`);
  await cp(source, target, { recursive: true });
  await git(target, ["init", "-q", "-b", "main"]);
  await git(target, ["add", "-A"]);
  await git(target, ["commit", "-q", "-m", "Initial commit: add.sh and its documentation"]);
  return git(target, ["rev-parse", "HEAD"]);
}
