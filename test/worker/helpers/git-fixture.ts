import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A real git remote for the tests: a bare repository in a temp folder, reached by file://. */

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Dev",
  GIT_AUTHOR_EMAIL: "dev@example.com",
  GIT_COMMITTER_NAME: "Dev",
  GIT_COMMITTER_EMAIL: "dev@example.com",
};

export function sh(cwd: string, args: string[], env: NodeJS.ProcessEnv = GIT_ENV): string {
  return execFileSync("git", args, { cwd, env, encoding: "utf8" }).trim();
}

export interface GitRemote {
  root: string;
  /** The base passed to the workspace manager: file://<root> */
  base: string;
  bare: string;
  clone: string;
  /** Commit a file to the clone and push main; returns the sha. */
  commit(file: string, content: string, opts?: { branch?: string; env?: NodeJS.ProcessEnv }): string;
}

export function makeRemote(owner = "acme", name = "widget"): GitRemote {
  const root = mkdtempSync(join(tmpdir(), "autofix-remote-"));
  const bare = join(root, owner, `${name}.git`);
  mkdirSync(bare, { recursive: true });
  sh(bare, ["init", "--quiet", "--bare", "--initial-branch=main"]);
  const clone = join(root, "clone");
  sh(root, ["clone", "--quiet", bare, clone]);
  sh(clone, ["checkout", "--quiet", "-B", "main"]);
  return {
    root,
    base: `file://${root}`,
    bare,
    clone,
    commit(file, content, opts = {}) {
      writeFileSync(join(clone, file), content);
      sh(clone, ["add", file], opts.env ?? GIT_ENV);
      sh(clone, ["commit", "--quiet", "-m", `change ${file}`], opts.env ?? GIT_ENV);
      sh(
        clone,
        ["push", "--quiet", "origin", `HEAD:refs/heads/${opts.branch ?? "main"}`],
        opts.env ?? GIT_ENV,
      );
      return sh(clone, ["rev-parse", "HEAD"]);
    },
  };
}
