import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type GitOptions, remoteGitOk } from "./remote.js";

/**
 * A job's own repository: a fresh `git init` whose objects are borrowed read-only, through
 * `objects/info/alternates`, from a store the job never writes to (the worker's mirror, or the
 * person's repository for `autofix run`), checked out detached at the job's commit. Config,
 * hooks, attributes and excludes the model writes into this `.git` stay in it: no other git
 * command of the service ever reads them, and the next job starts from a new one.
 */
export interface JobRepoInput {
  /** Folder to create (removed first if it exists). */
  dir: string;
  /** Absolute `objects` folders to borrow from. */
  objectStores: string[];
  sha: string;
  git: Omit<GitOptions, "cwd" | "token">;
}

export async function createJobRepo(input: JobRepoInput): Promise<void> {
  await rm(input.dir, { recursive: true, force: true });
  await mkdir(input.dir, { recursive: true });
  await remoteGitOk(["init", "--quiet", input.dir], input.git);
  await writeFile(
    join(input.dir, ".git", "objects", "info", "alternates"),
    `${input.objectStores.join("\n")}\n`,
  );
  // Parallel checkout (one worker per core): writing tens of thousands of files is most of the time.
  await remoteGitOk(["-c", "checkout.workers=0", "checkout", "--quiet", "--detach", input.sha], {
    ...input.git,
    cwd: input.dir,
  });
}
