import nock from "nock";
import { API, examplePayload } from "../helpers/github.js";
import type { TriggerHarness } from "./harness.js";

/**
 * A stateful GitHub (nock, persisted) for the closing-the-loop tests: the repository config,
 * CODEOWNERS, Actions jobs and annotations of runs, issues and their comments, pull requests,
 * the search API, check runs per commit and collaborator permissions. Every write is recorded.
 */

export const OWNER = "Codertocat";
export const REPO = "Hello-World";
export const FULL = `${OWNER}/${REPO}`;
export const APP_BOT = { login: "autofix[bot]", type: "Bot" };

export type JobSpec = {
  name: string;
  conclusion: string;
  labels?: string[];
  step?: string;
  message?: string;
};

export interface LoopIssue {
  number: number;
  title: string;
  body: string;
  labels: string[];
  state: string;
}

export interface LoopComment {
  id: number;
  issue: number;
  body: string;
  bot: boolean;
}

export interface LoopPull {
  number: number;
  head: { ref: string; sha: string };
  body: string;
  user: { login: string; type: string };
  state: string;
  html_url: string;
}

export interface SearchHit {
  number: number;
  title: string;
  body?: string;
  user: { login: string; type: string };
  pull_request?: unknown;
}

export function loopGitHub(opts: { config?: string; codeowners?: string } = {}) {
  const state = {
    config: opts.config ?? null,
    codeowners: opts.codeowners ?? null,
    attempts: new Map<string, JobSpec[]>(),
    annotations: new Map<number, string>(),
    issues: [] as LoopIssue[],
    comments: [] as LoopComment[],
    pulls: [] as LoopPull[],
    prPatches: [] as Array<{ number: number; body: string }>,
    search: [] as SearchHit[],
    searches: [] as string[],
    /** Answer the search API with this status (500: GitHub trouble). */
    searchStatus: 200,
    checkRuns: new Map<string, Array<{ name: string; status: string; conclusion: string | null }>>(),
    permissions: new Map<string, string>(),
    dispatches: [] as Array<{ workflow: string; ref: string }>,
    dispatchStatus: 204,
  };
  let nextId = 9000;
  let nextIssue = 500;
  const repoPath = `/repos/${OWNER}/${REPO}`;

  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/contents\/.+/)
    .query(true)
    .reply((uri) => {
      const path = decodeURIComponent(/\/contents\/([^?]+)/.exec(uri)![1]!);
      if (uri.startsWith(repoPath) && path === ".github/autofix.yml" && state.config !== null)
        return [200, state.config, { "content-type": "text/plain; charset=utf-8" }];
      if (uri.startsWith(repoPath) && path === ".github/CODEOWNERS" && state.codeowners !== null)
        return [
          200,
          {
            type: "file",
            path,
            encoding: "base64",
            content: Buffer.from(state.codeowners).toString("base64"),
          },
        ];
      return [404, { message: "Not Found" }];
    });
  nock(API)
    .persist()
    .get(/\/actions\/runs\/\d+\/attempts\/\d+\/jobs/)
    .query(true)
    .reply((uri) => {
      const [, runId, attempt] = /runs\/(\d+)\/attempts\/(\d+)/.exec(uri)!;
      const jobs = (state.attempts.get(`${runId}/${attempt}`) ?? []).map((j, i) => {
        const id = Number(runId) * 10 + i;
        if (j.message) state.annotations.set(id, j.message);
        return {
          id,
          name: j.name,
          conclusion: j.conclusion,
          labels: j.labels ?? ["N300", "in-service"],
          html_url: `https://github.com/${FULL}/actions/runs/${runId}/job/${id}`,
          steps: [
            { name: "Set up job", conclusion: "success" },
            { name: j.step ?? "Run tests", conclusion: j.conclusion },
          ],
        };
      });
      return [200, { total_count: jobs.length, jobs }];
    });
  nock(API)
    .persist()
    .get(/\/check-runs\/\d+\/annotations/)
    .query(true)
    .reply((uri) => {
      const msg = state.annotations.get(Number(/check-runs\/(\d+)/.exec(uri)![1]));
      return [200, msg ? [{ annotation_level: "failure", title: "", message: msg }] : []];
    });
  nock(API)
    .persist()
    .get(`${repoPath}/issues`)
    .query(true)
    .reply(() => [200, state.issues.map((i) => ({ ...i, labels: i.labels.map((name) => ({ name })) }))]);
  nock(API)
    .persist()
    .post(`${repoPath}/issues`)
    .reply((_uri, b: any) => {
      const issue: LoopIssue = {
        number: ++nextIssue,
        title: b.title,
        body: b.body,
        labels: b.labels ?? [],
        state: "open",
      };
      state.issues.push(issue);
      return [201, issue];
    });
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/issues\/\d+$/)
    .reply((uri) => {
      const i = state.issues.find((x) => x.number === Number(/issues\/(\d+)$/.exec(uri)![1]));
      return i ? [200, i] : [404, { message: "Not Found" }];
    });
  nock(API)
    .persist()
    .patch(/\/repos\/[^/]+\/[^/]+\/issues\/\d+$/)
    .reply((uri, b: any) => {
      const i = state.issues.find((x) => x.number === Number(/issues\/(\d+)$/.exec(uri)![1]));
      if (!i) return [404, { message: "Not Found" }];
      Object.assign(i, b);
      return [200, i];
    });
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/issues\/\d+\/comments/)
    .query(true)
    .reply((uri) => {
      const n = Number(/issues\/(\d+)\/comments/.exec(uri)![1]);
      return [
        200,
        state.comments
          .filter((c) => c.issue === n)
          .map((c) => ({
            id: c.id,
            body: c.body,
            user: c.bot ? APP_BOT : { login: "someone", type: "User" },
            ...(c.bot ? { performed_via_github_app: { id: 1 } } : {}),
          })),
      ];
    });
  nock(API)
    .persist()
    .post(/\/repos\/[^/]+\/[^/]+\/issues\/\d+\/comments/)
    .reply((uri, b: any) => {
      const c: LoopComment = {
        id: ++nextId,
        issue: Number(/issues\/(\d+)\/comments/.exec(uri)![1]),
        body: b.body,
        bot: true,
      };
      state.comments.push(c);
      return [201, { id: c.id, body: c.body }];
    });
  nock(API)
    .persist()
    .patch(/\/repos\/[^/]+\/[^/]+\/issues\/comments\/\d+$/)
    .reply((uri, b: any) => {
      const c = state.comments.find((x) => x.id === Number(/comments\/(\d+)$/.exec(uri)![1]));
      if (!c) return [404, { message: "Not Found" }];
      c.body = b.body;
      return [200, { id: c.id, body: c.body }];
    });
  nock(API)
    .persist()
    .post(/\/issues\/comments\/\d+\/reactions/)
    .reply(201, {});
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/collaborators\/[^/]+\/permission/)
    .reply((uri) => {
      const user = /collaborators\/([^/]+)\/permission/.exec(uri)![1]!;
      const role = state.permissions.get(user) ?? "read";
      return [200, { permission: role, role_name: role, user: { login: user } }];
    });
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/branches\/.+/)
    .reply(200, { name: "main", commit: { sha: "c0ffee".padEnd(40, "0") } });
  const pullJson = (p: LoopPull) => ({
    number: p.number,
    state: p.state,
    html_url: p.html_url,
    body: p.body,
    user: p.user,
    head: { ref: p.head.ref, sha: p.head.sha, repo: { full_name: FULL } },
  });
  nock(API)
    .persist()
    .get(`${repoPath}/pulls`)
    .query(true)
    .reply((uri) => {
      const q = new URL(uri, API).searchParams;
      const head = q.get("head")?.split(":")[1];
      return [
        200,
        state.pulls.filter((p) => p.state === "open" && (!head || p.head.ref === head)).map(pullJson),
      ];
    });
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/pulls\/\d+$/)
    .reply((uri) => {
      const p = state.pulls.find((x) => x.number === Number(/pulls\/(\d+)$/.exec(uri)![1]));
      return p ? [200, pullJson(p)] : [404, { message: "Not Found" }];
    });
  nock(API)
    .persist()
    .patch(/\/repos\/[^/]+\/[^/]+\/pulls\/\d+$/)
    .reply((uri, b: any) => {
      const p = state.pulls.find((x) => x.number === Number(/pulls\/(\d+)$/.exec(uri)![1]));
      if (!p) return [404, { message: "Not Found" }];
      if (typeof b.body === "string") {
        p.body = b.body;
        state.prPatches.push({ number: p.number, body: b.body });
      }
      return [200, pullJson(p)];
    });
  nock(API)
    .persist()
    .get("/search/issues")
    .query(true)
    .reply((uri) => {
      const q = new URL(uri, API).searchParams.get("q") ?? "";
      state.searches.push(q);
      if (state.searchStatus !== 200) return [state.searchStatus, { message: "search is down" }];
      const hits = q.includes(`repo:${FULL}`) && q.includes("is:open") ? state.search : [];
      return [
        200,
        {
          total_count: hits.length,
          incomplete_results: false,
          items: hits.map((h) => ({
            ...h,
            html_url: `https://github.com/${FULL}/${h.pull_request ? "pull" : "issues"}/${h.number}`,
          })),
        },
      ];
    });
  nock(API)
    .persist()
    .get(/\/repos\/[^/]+\/[^/]+\/commits\/[0-9a-f]+\/check-runs/)
    .query(true)
    .reply((uri) => {
      const sha = /commits\/([0-9a-f]+)\/check-runs/.exec(uri)![1]!;
      const runs = (state.checkRuns.get(sha) ?? []).map((r, i) => ({
        id: i + 1,
        ...r,
        html_url: `https://github.com/${FULL}/runs/${i + 1}`,
      }));
      return [200, { total_count: runs.length, check_runs: runs }];
    });
  nock(API)
    .persist()
    .post(/\/actions\/workflows\/[^/]+\/dispatches/)
    .reply((uri, b: any) => {
      if (state.dispatchStatus >= 400)
        return [state.dispatchStatus, { message: "Resource not accessible by integration" }];
      state.dispatches.push({
        workflow: decodeURIComponent(/workflows\/([^/]+)\/dispatches/.exec(uri)![1]!),
        ref: b.ref,
      });
      return [204, ""];
    });

  return {
    state,
    /** Comments on an issue, oldest first. */
    commentsOn: (n: number) => state.comments.filter((c) => c.issue === n).map((c) => c.body),
    /** The app's own fix PR for a target, as GitHub would list it. */
    addFixPr(target: number, sha: string, body: string): LoopPull {
      const p: LoopPull = {
        number: 600 + state.pulls.length,
        head: { ref: `autofix/codertocat-hello-world-${target}`, sha },
        body,
        user: APP_BOT,
        state: "open",
        html_url: `https://github.com/${FULL}/pull/${600 + state.pulls.length}`,
      };
      state.pulls.push(p);
      return p;
    },
  };
}

export type LoopGitHub = ReturnType<typeof loopGitHub>;

const HANG =
  "FAILED tests/ttnn/unit_tests/test_matmul.py::test_matmul_2d[bf16] - RuntimeError: TT_THROW @ tt_metal/impl/dispatch.cpp:412: device timeout, potential hang detected";

/** A failing job of the watched workflow (the same failure every time). */
export const failing = (message = HANG): JobSpec => ({
  name: "ttnn unit tests (N300)",
  conclusion: "failure",
  message,
});
export const passing: JobSpec = { name: "ttnn unit tests (N300)", conclusion: "success" };
export const TEST_ID = "tests/ttnn/unit_tests/test_matmul.py::test_matmul_2d[bf16]";

/** Deliver a completed run of the watched workflow on main (through the webhook). */
export async function completeRun(h: TriggerHarness, gh: LoopGitHub, runNumber: number, jobs: JobSpec[]) {
  const p = examplePayload("workflow_run", "completed");
  const runId = 7000 + runNumber;
  p.repository.default_branch = "main";
  Object.assign(p.workflow_run, {
    id: runId,
    run_number: runNumber,
    run_attempt: 1,
    head_branch: "main",
    head_sha: `${runNumber}`.padStart(40, "a"),
    event: "push",
    name: "All post-commit tests",
    path: ".github/workflows/all-post-commit.yaml",
    workflow_id: 99,
    conclusion: jobs.some((j) => j.conclusion === "failure") ? "failure" : "success",
    html_url: `https://github.com/${FULL}/actions/runs/${runId}`,
  });
  p.workflow_run.head_repository = { ...p.repository };
  gh.state.attempts.set(`${runId}/1`, jobs);
  await h.deliver("workflow_run", p);
}

/** Let every queued job "finish": the next automatic trigger is not a duplicate of it. */
export async function finishJobs(h: TriggerHarness): Promise<void> {
  for (const j of await h.jobs()) {
    const job = await h.queues.queue(j.pool).getJob(j.id);
    await job?.remove();
  }
}

/** A person's comment on an issue (the real payload). */
export function commentPayload(issue: number, body: string, login = "maintainer") {
  const p = examplePayload("issue_comment", "created");
  p.comment.body = body;
  p.comment.id = 424242 + issue;
  p.comment.user = { ...p.comment.user, login, type: "User" };
  delete p.comment.performed_via_github_app;
  p.sender = { ...p.sender, login, type: "User" };
  p.issue.number = issue;
  p.issue.body = "Tracking issue";
  delete p.issue.pull_request;
  p.repository.default_branch = "main";
  return p;
}

/** pull_request.closed for the app's fix PR of a target. */
export function closedPrPayload(pr: LoopPull, merged: boolean, by = "maintainer") {
  const p = examplePayload("pull_request", "closed");
  p.pull_request.number = pr.number;
  p.pull_request.merged = merged;
  p.pull_request.body = pr.body;
  p.pull_request.closed_at = "2026-11-24T09:00:00Z";
  p.pull_request.user = { ...p.pull_request.user, ...pr.user };
  p.pull_request.head = {
    ...p.pull_request.head,
    ref: pr.head.ref,
    sha: pr.head.sha,
    repo: { ...p.repository },
  };
  p.sender = { ...p.sender, login: by, type: "User" };
  return p;
}
