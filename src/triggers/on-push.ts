import type { Context } from "probot";
import { FIX_JOB_VERSION, type FixJob } from "../contracts/fix-job.js";
import { INFO_JSON_MAX_BYTES, parseInfoJsonText } from "../contracts/info-json.js";
import { COMMIT_EMAIL } from "../git/safe.js";
import { stripHidden } from "../shared/sanitize.js";
import type { CommentLocation } from "../status/outbox/index.js";
import { acceptJob } from "./accept.js";
import { authorizeSender, isBot } from "./authorize.js";
import { GitHubUnavailable, isGitHubTrouble } from "./budget.js";
import type { DecisionRecord, TriggerDeps } from "./deps.js";
import { configErrorText, loadRepoConfig } from "./repo-config.js";
import { replyAt } from "./respond.js";

/**
 * The push trigger, the original framework's first entry point: a branch pushed with a new or
 * changed info.json (one of `info_json_paths` in `.github/autofix.yml`) starts a job with that
 * request on the pushed commit. The status is a commit comment (the same status-comment
 * contract); an invalid file gets its problems there, and nothing runs.
 *
 * Nothing happens for tags, deleted branches, the app's own branches (`autofix/*`) and commits,
 * bots that are not allowlisted, and people without write access.
 */

/** The app's branches: never a trigger (a fix branch carries the info.json of the run that made it). */
export const APP_BRANCH_PREFIX = "autofix/";

const DEFAULT_INFO_PATHS = [".github/autofix/info.json", ".github/scripts/codebase-improvements/info.json"];

type PushPayload = Context<"push">["payload"];

/** What a push asks for before anything is read from GitHub. Pure. */
export type PushIntent =
  | { kind: "ignore"; why: string }
  | { kind: "candidate"; branch: string; sha: string; changed: string[] };

/**
 * Classify a push from its payload alone: a branch (not a tag), not deleted, not the app's,
 * whose head commit adds or changes a .json file. Pure.
 */
export function pushIntent(
  payload: Pick<PushPayload, "ref" | "after" | "deleted" | "head_commit">,
): PushIntent {
  if (!payload.ref.startsWith("refs/heads/")) return { kind: "ignore", why: `not a branch (${payload.ref})` };
  const branch = payload.ref.slice("refs/heads/".length);
  if (payload.deleted || /^0+$/.test(payload.after)) return { kind: "ignore", why: "branch deleted" };
  if (branch.startsWith(APP_BRANCH_PREFIX)) return { kind: "ignore", why: "the app's own branch" };
  const head = payload.head_commit;
  if (!head) return { kind: "ignore", why: "no head commit" };
  if (head.id !== payload.after) return { kind: "ignore", why: "head commit is not the pushed tip" };
  const emails = [head.author?.email, head.committer?.email].map((e) => (e ?? "").toLowerCase());
  if (emails.includes(COMMIT_EMAIL)) return { kind: "ignore", why: "the app's own commit" };
  const changed = [...new Set([...(head.added ?? []), ...(head.modified ?? [])])];
  if (!changed.some((p) => p.endsWith(".json"))) return { kind: "ignore", why: "no .json file changed" };
  return { kind: "candidate", branch, sha: payload.after, changed };
}

/** The configured info.json the head commit changed, first in config order. Pure. */
export function changedInfoPath(changed: readonly string[], paths: readonly string[]): string | null {
  const set = new Set(changed);
  return paths.find((p) => set.has(p)) ?? null;
}

/** One job per pushed commit while it is queued or running (the same commit on two branches too). */
export function commitFingerprint(owner: string, repo: string, sha: string): string {
  return `commit:${owner}/${repo}@${sha}`.toLowerCase();
}

export async function onPush(context: Context<"push">, deps: TriggerDeps): Promise<DecisionRecord> {
  const payload = context.payload;
  const { repository, sender, installation } = payload;
  if (!installation) return { decision: "ignored", detail: "no installation" };
  const intent = pushIntent(payload);
  if (intent.kind === "ignore") return { decision: "ignored", detail: intent.why };
  const owner = repository.owner?.login ?? repository.owner?.name ?? "";
  if (!owner) return { decision: "ignored", detail: "no repository owner" };
  const repo = { owner, repo: repository.name };
  const loc: CommentLocation = { kind: "commit", owner, repo: repository.name, sha: intent.sha };
  const who = sender
    ? { login: sender.login, type: sender.type }
    : { login: payload.pusher.name, type: "User" };
  // A bot's push never gets a comment, allowlisted or not, unless it really starts a job.
  const quiet = isBot(who);

  const loaded = await loadRepoConfig(context);
  if (!loaded.ok) {
    // Only when a default path changed: with a broken config the configured paths are unknown.
    if (changedInfoPath(intent.changed, DEFAULT_INFO_PATHS) === null || quiet)
      return { decision: "ignored", detail: "invalid config; no default info.json path changed" };
    await replyAt(context.octokit, loc, configErrorText(loaded.errors));
    return { decision: "bad-config" };
  }
  const infoPath = changedInfoPath(intent.changed, loaded.config.info_json_paths);
  if (infoPath === null) return { decision: "ignored", detail: "no configured info.json changed" };

  const auth = await authorizeSender(
    context.octokit,
    repo,
    who,
    loaded.config.allowed_bots,
    deps.permissions,
  );
  if (!auth.allowed) {
    if (auth.reason === "bot") return { decision: "ignored", detail: "bot not in allowed_bots" };
    if (auth.reason === "lookup-failed") {
      deps.log.error({ sender: who.login, error: auth.error }, "permission lookup failed; denying");
      throw new GitHubUnavailable(`the permission of ${who.login} could not be read: ${auth.error}`);
    }
    // A push needs write access already; a role that lost it since (or a triage role with a push
    // rule) gets nothing, and no comment to spam the commit with.
    return { decision: "unauthorized", detail: `role ${auth.role ?? "none"}` };
  }

  const read = await readInfoFile(context, repo, infoPath, intent.sha);
  if (!read.ok) {
    await replyAt(context.octokit, loc, invalidText(infoPath, intent.sha, [read.problem]));
    return { decision: "invalid-command", detail: read.problem };
  }
  const checked = parseInfoJsonText(read.text, infoPath, { relativeOnly: true });
  if (!checked.ok) {
    await replyAt(context.octokit, loc, invalidText(infoPath, intent.sha, checked.problems, checked.notes));
    return { decision: "invalid-command", detail: checked.problems.join("; ") };
  }
  const request = checked.request;
  const pool = loaded.config.default_pool;
  const job: FixJob = {
    version: FIX_JOB_VERSION,
    source: "push",
    repository: {
      owner,
      name: repository.name,
      installationId: installation.id,
      defaultBranch: repository.default_branch ?? repository.master_branch ?? "main",
    },
    target: { kind: "commit", headSha: intent.sha, headRef: intent.branch, infoPath },
    // The file is the pusher's text, but it may carry hidden content pasted from elsewhere.
    request: {
      ...request,
      prompt: stripHidden(request.prompt).trim() || request.prompt,
      ...(request.rawLogs ? { rawLogs: stripHidden(request.rawLogs) || request.rawLogs } : {}),
    },
    pool,
    fingerprint: commitFingerprint(owner, repository.name, intent.sha),
    requestedBy: who.login,
    createdAt: deps.now().toISOString(),
  };
  const result = await acceptJob(context.octokit, deps, job);
  return result.status === "enqueued"
    ? { decision: "enqueued", jobId: result.jobId, pool }
    : { decision: "duplicate", jobId: result.jobId, pool: result.pool };
}

type Read = { ok: true; text: string } | { ok: false; problem: string };

/**
 * The info.json at the pushed commit, through the contents API: a regular file (not a link or a
 * submodule) of at most INFO_JSON_MAX_BYTES. GitHub trouble fails the delivery (redeliverable).
 */
async function readInfoFile(
  context: Context<"push">,
  repo: { owner: string; repo: string },
  path: string,
  sha: string,
): Promise<Read> {
  let data: unknown;
  try {
    ({ data } = await context.octokit.rest.repos.getContent({ ...repo, path, ref: sha }));
  } catch (err) {
    if (err instanceof GitHubUnavailable || isGitHubTrouble(err)) throw err;
    const status = (err as { status?: number }).status;
    return {
      ok: false,
      problem:
        status === 404
          ? `${path} is not in commit ${sha.slice(0, 7)}`
          : `${path} could not be read (GitHub answered ${status ?? "an error"})`,
    };
  }
  const file = data as { type?: string; size?: number; encoding?: string; content?: string };
  if (Array.isArray(data) || file.type !== "file")
    return {
      ok: false,
      problem: `${path} must be a regular file (it is ${Array.isArray(data) ? "a folder" : `a ${file.type ?? "thing"}`})`,
    };
  if (typeof file.size === "number" && file.size > INFO_JSON_MAX_BYTES)
    return {
      ok: false,
      problem: `${path} is larger than ${INFO_JSON_MAX_BYTES / 1024} KB; put long logs behind a "url" instead`,
    };
  if (file.encoding !== "base64" || typeof file.content !== "string")
    return { ok: false, problem: `${path} could not be read (GitHub gave no content)` };
  const bytes = Buffer.from(file.content, "base64");
  if (bytes.length > INFO_JSON_MAX_BYTES)
    return { ok: false, problem: `${path} is larger than ${INFO_JSON_MAX_BYTES / 1024} KB` };
  return { ok: true, text: bytes.toString("utf8") };
}

/** The commit comment for an info.json that cannot run. Pure. */
export function invalidText(path: string, sha: string, problems: string[], notes: string[] = []): string {
  const lines = [...problems.map((p) => `- ${p}`), ...notes.map((n) => `note: ${n}`)];
  // The problems quote the file: a fence longer than any backtick run in them stays closed.
  const fence = "`".repeat(
    Math.max(3, ...lines.flatMap((l) => [...l.matchAll(/`+/g)].map((m) => m[0].length + 1))),
  );
  return [
    `Autofix did not run: \`${path}\` at ${sha.slice(0, 7)} is not a valid request.`,
    "",
    fence,
    ...lines,
    fence,
    "",
    `Fix the file (check it locally with \`autofix validate ${path.replace(/`/g, "")}\`) and push again.`,
  ].join("\n");
}
