import { remoteGit, remoteGitOk } from "../git/remote.js";

/**
 * Idempotent results: one deterministic branch per target, and a push that never
 * force-pushes over commits someone else added to it.
 *
 * The worker pushes with the app's installation token (PushBranchInput.token). Unlike the
 * `GITHUB_TOKEN` of a workflow run, whose pushes start no workflows, a push with an installation
 * token starts the repository's `push` and `pull_request` workflows on the fix branch: the
 * fix's own CI runs, and src/triggers/on-check.ts writes its results into the PR.
 */

export const BRANCH_PREFIX = "autofix/";

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 60);
}

/** `autofix/<owner>-<repo>-<number>`: the same target always gets the same branch. Pure. */
export function branchNameFor(target: { owner: string; repo: string; number: number | string }): string {
  const name = `${BRANCH_PREFIX}${slug(target.owner)}-${slug(target.repo)}-${slug(String(target.number))}`;
  return name.replace(/\.lock$/, "-lock");
}

export class PushRefusedError extends Error {
  constructor(
    message: string,
    readonly foreignCommits: { sha: string; author: string; committer: string }[],
  ) {
    super(message);
    this.name = "PushRefusedError";
  }
}

export interface PushBranchInput {
  /** The worktree whose HEAD (or `commit`) is pushed. */
  workspace: string;
  /** The commit to push; HEAD of the workspace when absent. */
  commit?: string;
  remoteUrl: string;
  branch: string;
  token?: string;
  /** Path of the git credential helper (WorkspaceManager.helperPath). */
  helperPath: string;
  /**
   * E-mail addresses of the app's own commits (`<id>+<slug>[bot]@users.noreply.github.com`).
   * Remote commits by these may be replaced; anything else blocks the push.
   */
  appEmails?: readonly string[];
  /** Tip the app pushed last time (from the PR or the job record), replaceable even if not an ancestor. */
  previousPush?: string;
  signal?: AbortSignal;
  baseEnv?: NodeJS.ProcessEnv;
}

export interface PushResult {
  branch: string;
  sha: string;
  /** The remote tip replaced (null when the branch was created). */
  previous: string | null;
  kind: "created" | "fast-forward" | "replaced-own" | "up-to-date";
}

/**
 * Push HEAD of `workspace` to `refs/heads/<branch>`. The lease names the exact remote tip we
 * inspected, so a commit pushed in between makes git refuse rather than overwrite it.
 * Refuses (PushRefusedError) when the remote branch holds commits that are neither in HEAD's
 * history nor the app's own.
 */
export async function pushBranch(input: PushBranchInput): Promise<PushResult> {
  if (!input.branch.startsWith(BRANCH_PREFIX)) {
    throw new Error(
      `refusing to push to "${input.branch}": the app pushes only to ${BRANCH_PREFIX}* branches`,
    );
  }
  const base = {
    cwd: input.workspace,
    helperPath: input.helperPath,
    remoteUrl: input.remoteUrl,
    ...(input.token ? { token: input.token } : {}),
    ...(input.signal ? { signal: input.signal } : {}),
    ...(input.baseEnv ? { baseEnv: input.baseEnv } : {}),
  };
  const ref = `refs/heads/${input.branch}`;
  const head = input.commit ?? (await remoteGitOk(["rev-parse", "HEAD"], base)).trim();
  const listed = await remoteGitOk(["ls-remote", input.remoteUrl, ref], base);
  const remoteTip =
    listed
      .split("\n")
      .find((l) => l.endsWith(`\t${ref}`))
      ?.split("\t")[0] ?? null;

  if (remoteTip === head) return { branch: input.branch, sha: head, previous: remoteTip, kind: "up-to-date" };

  let kind: PushResult["kind"] = "created";
  if (remoteTip) {
    // Bring the remote tip in (into FETCH_HEAD of this worktree only) to look at it.
    await remoteGitOk(["fetch", "--quiet", "--no-tags", input.remoteUrl, ref], base);
    const isAncestor =
      (await remoteGit(["merge-base", "--is-ancestor", remoteTip, head], base)).exitCode === 0;
    if (isAncestor) {
      kind = "fast-forward";
    } else if (input.previousPush && input.previousPush === remoteTip) {
      kind = "replaced-own";
    } else {
      const log = await remoteGitOk(["log", "--format=%H%x09%ae%x09%ce", remoteTip, "--not", head], base);
      const own = new Set((input.appEmails ?? []).map((e) => e.toLowerCase()));
      const commits = log
        .split("\n")
        .filter(Boolean)
        .map((l) => {
          const [sha = "", author = "", committer = ""] = l.split("\t");
          return { sha, author, committer };
        });
      const foreign = commits.filter(
        (c) => !own.has(c.author.toLowerCase()) || !own.has(c.committer.toLowerCase()),
      );
      if (foreign.length > 0 || own.size === 0) {
        const list = (foreign.length > 0 ? foreign : commits)
          .slice(0, 5)
          .map((c) => `${c.sha.slice(0, 10)} by ${c.author}`)
          .join(", ");
        throw new PushRefusedError(
          `refusing to overwrite ${input.branch}: it has commits the app did not write (${list}). ` +
            "Rebase them onto the new fix by hand, or delete the branch and run /autofix retry",
          foreign.length > 0 ? foreign : commits,
        );
      }
      kind = "replaced-own";
    }
  }
  await remoteGitOk(
    [
      "push",
      "--quiet",
      "--no-verify",
      `--force-with-lease=${ref}:${remoteTip ?? ""}`,
      input.remoteUrl,
      `${head}:${ref}`,
    ],
    base,
  );
  return { branch: input.branch, sha: head, previous: remoteTip, kind };
}
