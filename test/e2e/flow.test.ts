import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { Probot, ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import type { Settings } from "../../src/config/env.js";
import { createJobRunner } from "../../src/pipeline/job-runner.js";
import { JobQueues } from "../../src/queue/queues.js";
import { createLogger } from "../../src/shared/logger.js";
import { drainerOctokits, Outbox, OutboxDrainer } from "../../src/status/outbox/index.js";
import { createTriggerDeps, registerTriggers } from "../../src/triggers/index.js";
import { createAppGitHubFactory } from "../../src/worker/github.js";
import { type RunningWorker, startWorker } from "../../src/worker/service.js";
import { WorkspaceManager } from "../../src/worker/workspace.js";
import { ADD_BUGGY, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { type FakeGitHub, startFakeGitHub, TEST_APP_ID, testPrivateKey } from "../helpers/fake-github.js";
import { examplePayload } from "../helpers/github.js";
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { testSettings } from "../triggers/harness.js";
import { makeRemote, sh } from "../worker/helpers/git-fixture.js";
import { until } from "../worker/helpers/proc.js";

/**
 * The whole product on one machine: a webhook through the Probot app (real Redis), a worker
 * that claims the job, mints an installation token, makes a worktree from a bare remote,
 * fetches the failing logs, runs the agent against a fake Messages API, pushes the fix and
 * opens the draft PR, with one status comment kept current to the end. GitHub is a loopback
 * fake; git, Redis, commands and gates are real.
 */

const silent = createLogger({ level: "silent" });

interface Bed {
  gh: FakeGitHub;
  fake?: FakeAnthropic;
  prefix: string;
  queues: JobQueues;
  probot: Probot;
  remote: ReturnType<typeof makeRemote>;
  reportDir: string;
  worker?: RunningWorker;
  sha: string;
  /** The web process's outbox drainer, as src/web/main.ts runs it. */
  webDrainer: OutboxDrainer;
}

let bed: Bed | undefined;
afterEach(async () => {
  if (!bed) return;
  await bed.worker?.shutdown({ deadlineMs: 100 });
  await bed.webDrainer.stop();
  await bed.queues.close();
  await bed.fake?.close();
  await bed.gh.close();
  await dropPrefix(bed.prefix);
  bed = undefined;
});

async function setUp(): Promise<Bed> {
  const gh = await startFakeGitHub();
  const remote = makeRemote("acme", "widget");
  remote.commit("README.md", "widget\n");
  mkdirSync(join(remote.clone, "src"));
  const sha = remote.commit("src/add.sh", ADD_BUGGY);
  gh.branches.set("acme/widget:main", sha);
  const prefix = uniquePrefix("e2e");
  const queues = new JobQueues({ redis: TEST_REDIS_URL, prefix });
  await queues.queue("cpu").waitUntilReady();
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: testPrivateKey(),
    secret: "e2e-secret",
    baseUrl: gh.url,
    log: silent,
    Octokit: ProbotOctokit.defaults((o: Record<string, unknown>) => ({
      ...o,
      retry: { enabled: false },
      throttle: { enabled: false },
    })),
  });
  await probot.load((app) =>
    registerTriggers(app, createTriggerDeps(testSettings(prefix, TEST_APP_ID), queues, silent)),
  );
  // The web process delivers its GitHub writes through the outbox, as npm start does.
  const webDrainer = new OutboxDrainer({
    outbox: new Outbox({ redis: queues.connection, prefix }),
    octokitFor: drainerOctokits(
      createAppGitHubFactory({
        appId: TEST_APP_ID,
        privateKey: testPrivateKey(),
        githubApiUrl: gh.url,
        throttle: false,
      }),
    ),
  });
  webDrainer.start();
  return {
    gh,
    prefix,
    queues,
    probot,
    remote,
    sha,
    webDrainer,
    reportDir: mkdtempSync(join(tmpdir(), "autofix-reports-")),
  };
}

async function startWorkerFor(b: Bed, testDir: string): Promise<void> {
  b.fake = await startFakeAnthropic(addBugSession(testDir));
  const workDir = mkdtempSync(join(tmpdir(), "autofix-e2e-work-"));
  const settings = { AUTOFIX_WORK_DIR: workDir, AUTOFIX_MODEL: "claude-sonnet-5" } as Settings;
  const fakeUrl = b.fake.url;
  b.worker = await startWorker({
    redisUrl: TEST_REDIS_URL,
    prefix: b.prefix,
    plans: [{ pool: "cpu", cards: 0, concurrency: 1 }],
    runJob: createJobRunner(settings, silent, {
      client: () => new Anthropic({ apiKey: "test", baseURL: fakeUrl, maxRetries: 0 }),
      reportDir: b.reportDir,
    }),
    github: createAppGitHubFactory({
      appId: TEST_APP_ID,
      privateKey: testPrivateKey(),
      githubApiUrl: b.gh.url,
      throttle: false,
    }),
    workspaces: new WorkspaceManager({ workDir, remote: b.remote.base }),
    logger: silent,
    host: { deviceDir: join(workDir, "no-devices"), devices: [], ttSmi: null },
    cancelPollMs: 200,
  });
}

async function waitForFinal(b: Bed, target: string): Promise<string> {
  const done = await until(
    async () => /### Autofix · (✅|❌|🟡|⏹️|⌛)/.test(b.gh.latest(target) ?? ""),
    30_000,
    100,
  );
  if (!done) throw new Error(`no final status for ${target}; last: ${b.gh.latest(target)}`);
  return b.gh.latest(target)!;
}

function commentPayload(body: string) {
  const p = examplePayload("issue_comment", "created");
  p.repository.owner.login = "acme";
  p.repository.name = "widget";
  p.repository.full_name = "acme/widget";
  p.repository.default_branch = "main";
  p.issue.number = 9;
  p.issue.title = "add.sh returns the wrong sum";
  p.issue.body = "`bash src/add.sh 2 3` prints -1:\n\nexpected 5, got -1";
  delete p.issue.pull_request;
  p.comment.body = body;
  p.sender.login = "alice";
  p.sender.type = "User";
  return p;
}

describe("end to end: trigger -> queue -> worker -> agent -> draft PR -> final status", () => {
  it("a /autofix comment ends in a pushed fix, one draft PR, one truthful status comment and a report", async () => {
    bed = await setUp();
    bed.gh.permissions.set("alice", "write");
    await bed.probot.receive({
      id: "e2e-1",
      name: "issue_comment",
      payload: commentPayload("/autofix make add.sh add") as any,
    });
    // The webhook answered once the job and its queued view were in Redis; the drainer posts it.
    expect(await until(() => bed!.gh.latest("acme/widget#9")?.includes("⏳ Queued") === true)).toBe(true);
    await startWorkerFor(bed, "autofix-tests/acme-widget-9");

    const final = await waitForFinal(bed, "acme/widget#9");
    // The status comment: one per target, edited from queued to a final state.
    const statusComments = [...bed.gh.comments.values()].filter((c) =>
      c.body.includes("<!-- autofix:status acme/widget#9 -->"),
    );
    expect(statusComments).toHaveLength(1);
    expect(final).toContain("✅ Succeeded: draft PR ready for review");
    expect(final).toContain("requested by @alice");
    expect(final).toMatch(/- \[x\] Prepare workspace and logs/);
    expect(final).toMatch(
      /- \[x\] Reproduce the failure \(gate passed: 0\/2 passed\)|- \[x\] Reproduce the failure/,
    );
    expect(final).toMatch(/- \[x\] Fix and prove it/);
    expect(final).toMatch(/- \[x\] Open draft PR and report \(opened #\d+\)/);
    expect(final).toContain("[Draft PR](https://github.com/acme/widget/pull/");
    expect(final).toMatch(/model spend [\d,]+ tokens \(~\$\d+\.\d\d\)/);
    expect(final).toContain("<summary>Report (Success)");
    expect(final).toContain("| before: base commit | 2/2 runs failed (reproduced) |");

    // The draft PR: one, from the fix branch, with the evidence.
    expect(bed.gh.pulls).toHaveLength(1);
    const pr = bed.gh.pulls[0]!;
    expect(pr).toMatchObject({ head: "autofix/acme-widget-9", base: "main", draft: true });
    expect(pr.title).toBe("Autofix: add.sh adds instead of subtracting");
    for (const h of [
      "## Summary",
      "## Root Cause",
      "## Changes",
      "## Evidence",
      "## Performance Impact",
      "## Recommended CI Workflows",
      "## Relevant Developers",
    ]) {
      expect(pr.body).toContain(h);
    }
    expect(pr.body).toContain("| after: with the fix | 2/2 runs passed (accepted) |");
    expect(pr.body).toContain("Recent authors of the changed files: Dev");

    // The pushed branch holds only the source change; the test stays out of the diff.
    const changed = sh(bed.remote.bare, ["diff", "--name-only", bed.sha, "autofix/acme-widget-9"]);
    expect(changed).toBe("src/add.sh");
    expect(sh(bed.remote.bare, ["show", "autofix/acme-widget-9:src/add.sh"])).toContain("$1 + $2");

    // The report, in the original layout.
    const [file] = readdirSync(bed.reportDir);
    expect(file).toMatch(/^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_make-add-sh-add\.md$/);
    const report = readFileSync(join(bed.reportDir, file!), "utf8");
    expect(report).toContain("- **Status:** Success");
    expect(report).toMatch(/- \*\*Run id:\*\* \S+ \(attempt 1\/3\)/);
    expect(report).toContain(`- opened: https://github.com/acme/widget/pull/${pr.number}`);
    expect(report).toContain("## Execution Timeline");

    // The job finished once, and nothing is left queued.
    const q = bed.queues.queue("cpu");
    await until(async () => (await q.getJobCounts("completed")).completed === 1, 5_000, 50);
    const counts = await q.getJobCounts("completed", "failed", "waiting", "active");
    expect(counts).toMatchObject({ completed: 1, failed: 0, waiting: 0, active: 0 });
    expect(bed.gh.reactions).toEqual([{ commentId: expect.any(Number), content: "eyes" }]);

    // The job counts once in the shared metrics the web process serves on /metrics.
    const numbers = await bed.queues.connection.hgetall(`${bed.prefix}:ops:jobs`);
    expect(numbers).toMatchObject({
      "jobs|cpu|succeeded": "1",
      "phase_count|cpu|reproduce": "1",
      "phase_count|cpu|fix": "1",
      "gates_total|cpu": "2",
      "gates_passed|cpu": "2",
    });
    expect(Number(numbers["tokens|cpu"])).toBeGreaterThan(0);
  });

  it("a worker already waiting when the command arrives, GitHub answering 150 ms late: still one status comment, ending final", async () => {
    bed = await setUp();
    bed.gh.permissions.set("alice", "write");
    // Every GitHub request of the web process and the worker answers late, as on a slow day.
    bed.gh.fault({ path: /./, delayMs: 150 });
    // The worker is idle before the webhook: it takes the job the moment it is queued, while
    // the web's queued view may still be on its way to GitHub.
    await startWorkerFor(bed, "autofix-tests/acme-widget-9");
    await bed.probot.receive({
      id: "e2e-race",
      name: "issue_comment",
      payload: commentPayload("/autofix make add.sh add") as any,
    });
    const final = await waitForFinal(bed, "acme/widget#9");
    expect(final).toContain("✅ Succeeded: draft PR ready for review");
    const statusComments = [...bed.gh.comments.values()].filter((c) =>
      c.body.includes("<!-- autofix:status acme/widget#9 -->"),
    );
    expect(statusComments).toHaveLength(1);
    // Every status write of both processes edited that one comment.
    const created = bed.gh.requests.filter(
      (r) => r.method === "POST" && /\/issues\/9\/comments$/.test(r.path),
    );
    expect(created).toHaveLength(1);
    expect(created[0]!.fault).toBe("delay");
    expect(bed.gh.pulls).toHaveLength(1);
  });

  it("three failing CI runs open a tracking issue whose job fetches the job log, fixes the bug and opens the PR", async () => {
    bed = await setUp();
    const log = [
      "2026-11-24T10:00:00.0000000Z ##[group]Run bash tests/run.sh",
      "2026-11-24T10:00:00.0000000Z bash tests/run.sh",
      "2026-11-24T10:00:00.0000000Z shell: /usr/bin/bash -e {0}",
      "2026-11-24T10:00:00.0000000Z ##[endgroup]",
      "2026-11-24T10:00:01.0000000Z expected 5, got -1",
      "2026-11-24T10:00:01.1000000Z FAILED tests/test_add.py::test_add - AssertionError: expected 5, got -1",
      "2026-11-24T10:00:01.2000000Z ##[error]Process completed with exit code 1.",
    ].join("\n");
    for (const n of [1, 2, 3]) {
      const runId = 500 + n;
      const jobId = 9000 + n;
      bed.gh.jobs.set(jobId, {
        id: jobId,
        runId,
        name: "unit",
        conclusion: "failure",
        labels: ["ubuntu-latest"],
        log,
        annotations: ["AssertionError: expected 5, got -1"],
      });
      bed.gh.attempts.set(`${runId}/1`, [jobId]);
      const p = examplePayload("workflow_run", "completed");
      p.repository.owner.login = "acme";
      p.repository.name = "widget";
      p.repository.full_name = "acme/widget";
      p.repository.default_branch = "main";
      Object.assign(p.workflow_run, {
        id: runId,
        run_number: n,
        run_attempt: 1,
        head_branch: "main",
        head_sha: bed.sha,
        event: "push",
        conclusion: "failure",
        name: "CI",
        path: ".github/workflows/ci.yml",
        workflow_id: 3,
        html_url: `https://github.com/acme/widget/actions/runs/${runId}`,
      });
      p.workflow_run.head_repository = { ...p.repository };
      await bed.probot.receive({ id: `e2e-ci-${n}`, name: "workflow_run", payload: p as any });
    }
    expect(bed.gh.issues).toHaveLength(1);
    const issue = bed.gh.issues[0]!;
    expect(issue.labels).toEqual(["autofix-ci"]);
    await startWorkerFor(bed, `autofix-tests/acme-widget-${issue.number}`);

    const final = await waitForFinal(bed, `acme/widget#${issue.number}`);
    expect(final).toContain("✅ Succeeded");
    expect(final).toContain("3 consecutive failures of CI / unit");
    expect(final).not.toContain("requested by @");
    // The agent was told what the job log said (fetched through the redirect, without the token at the blob host).
    const firstPrompt = JSON.stringify(bed.fake!.requests[0]!.messages);
    expect(firstPrompt).toContain("tests/test_add.py::test_add");
    const pr = bed.gh.pulls[0]!;
    expect(pr.head).toBe(`autofix/acme-widget-${issue.number}`);
    expect(pr.body).toContain("the repeated failure of **CI / unit**");
    expect(pr.body).toContain("- `CI`: the workflow that failed");
    const [file] = readdirSync(bed.reportDir);
    const report = readFileSync(join(bed.reportDir, file!), "utf8");
    expect(report).toContain("- failure (");
    expect(report).toContain("tests/test_add.py::test_add");
  });
});
