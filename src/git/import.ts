import { scrubEnv } from "../sandbox/env.js";
import { describeFailure, runHostCommand } from "../shared/process.js";
import { SAFE_GIT_CONFIG, SAFE_GIT_ENV } from "./safe.js";

/**
 * Bring commits a job made into a repository the service trusts (the worker's mirror, the
 * person's repository for `autofix run`) without running any git command in the job's
 * repository: its objects folder is read as data, through GIT_ALTERNATE_OBJECT_DIRECTORIES of
 * a git that runs in the trusted repository, so nothing the model wrote into the job's `.git`
 * (config, hooks, alternates commands) is ever read. Pushes and refs then start from there.
 */
export interface ImportInput {
  /** The trusted repository (work tree or bare). */
  into: string;
  /** The job repository's `objects` folder. */
  fromObjects: string;
  /** Commits to bring over, with everything they reach that `into` lacks. */
  tips: string[];
  /** Commits `into` already has (the base): their history is not copied. */
  have: string[];
  signal?: AbortSignal;
}

const SCRIPT = `set -euo pipefail
into="$1"; from="$2"; shift 2
GIT_ALTERNATE_OBJECT_DIRECTORIES="$from" git -C "$into" "$@" pack-objects --revs --stdout --quiet \\
  | git -C "$into" "$@" index-pack --stdin --fix-thin >/dev/null`;

export async function importCommits(o: ImportInput): Promise<void> {
  const tips = o.tips.filter((t) => /^[0-9a-f]{40}$/.test(t));
  if (tips.length !== o.tips.length) throw new Error("importCommits: tips must be full commit SHAs");
  if (tips.length === 0) return;
  const revs = [...tips, ...o.have.filter((h) => /^[0-9a-f]{40}$/.test(h)).map((h) => `^${h}`)].join("\n");
  const r = await runHostCommand(
    ["bash", "-c", SCRIPT, "import", o.into, o.fromObjects, ...SAFE_GIT_CONFIG],
    {
      env: scrubEnv(process.env, { ...SAFE_GIT_ENV }),
      input: `${revs}\n`,
      timeoutMs: 10 * 60_000,
      ...(o.signal ? { signal: o.signal } : {}),
    },
  );
  if (r.exitCode !== 0) throw new Error(describeFailure("importing the job's commits", r));
  for (const t of tips) {
    const check = await runHostCommand(
      ["git", ...SAFE_GIT_CONFIG, "-C", o.into, "cat-file", "-e", `${t}^{commit}`],
      {
        env: scrubEnv(process.env, { ...SAFE_GIT_ENV }),
      },
    );
    if (check.exitCode !== 0) throw new Error(`importing the job's commits: ${t} did not arrive`);
  }
}
