import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { API, examplePayload, nockInstallationToken } from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";

const OWNER = "Codertocat";
const REPO = "Hello-World";

type JobSpec = { name: string; conclusion: string; labels?: string[]; step?: string; message?: string };

/**
 * GitHub as the repeated-failure detector sees it: each run's jobs per attempt and the
 * annotations of failed jobs. Tracking issues and comments are recorded.
 */
function fakeGitHub() {
  const attempts = new Map<string, JobSpec[]>();
  const annotations = new Map<number, string>();
  const issuesCreated: Array<{ title: string; body: string; labels: string[] }> = [];
  const comments: Array<{ issue: number; body: string }> = [];
  nock(API).persist().get(`/repos/${OWNER}/${REPO}/contents/.github%2Fautofix.yml`).reply(404, {});
  nock(API).persist().get(`/repos/${OWNER}/.github/contents/.github%2Fautofix.yml`).reply(404, {});
  nock(API)
    .persist()
    .get(/\/actions\/runs\/\d+\/attempts\/\d+\/jobs/)
    .query(true)
    .reply((uri) => {
      const [, runId, attempt] = /runs\/(\d+)\/attempts\/(\d+)/.exec(uri)!;
      const jobs = (attempts.get(`${runId}/${attempt}`) ?? []).map((j, i) => {
        const id = Number(runId) * 10 + i;
        if (j.message) annotations.set(id, j.message);
        return {
          id,
          name: j.name,
          conclusion: j.conclusion,
          labels: j.labels ?? ["N150", "in-service"],
          html_url: `https://github.com/${OWNER}/${REPO}/actions/runs/${runId}/job/${id}`,
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
      const id = Number(/check-runs\/(\d+)/.exec(uri)![1]);
      const msg = annotations.get(id);
      return [200, msg ? [{ annotation_level: "failure", title: "", message: msg }] : []];
    });
  nock(API).persist().get(`/repos/${OWNER}/${REPO}/issues`).query(true).reply(200, []);
  nock(API)
    .persist()
    .post(`/repos/${OWNER}/${REPO}/issues`, (b) => {
      issuesCreated.push(b);
      return true;
    })
    .reply(201, () => ({ number: 500 + issuesCreated.length }));
  nock(API)
    .persist()
    .patch(/\/issues\/\d+$/)
    .reply(200, {});
  nock(API)
    .persist()
    .get(/\/issues\/\d+\/comments/)
    .query(true)
    .reply(200, []);
  nock(API)
    .persist()
    .post(/\/issues\/\d+\/comments/, () => true)
    .reply(201, (uri, body: any) => {
      comments.push({ issue: Number(/issues\/(\d+)/.exec(uri)![1]), body: body.body });
      return { id: 9000 + comments.length };
    });
  return { attempts, issuesCreated, comments };
}

const TIMEOUT =
  "TT_THROW @ tt_metal/impl/dispatch.cpp:412: tt::exception\ninfo:\nTIMEOUT: device timeout, potential hang detected, the device is unrecoverable";

describe("repeated CI failures (workflow_run.completed)", () => {
  let h: TriggerHarness;
  let gh: ReturnType<typeof fakeGitHub>;
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    gh = fakeGitHub();
  });
  afterEach(async () => {
    await h.close();
  });

  async function completeRun(
    runNumber: number,
    jobs: JobSpec[],
    opts: { attempt?: number; branch?: string; fork?: boolean; conclusion?: string } = {},
  ) {
    const p = examplePayload("workflow_run", "completed");
    const attempt = opts.attempt ?? 1;
    const runId = 7000 + runNumber;
    p.repository.default_branch = "main";
    Object.assign(p.workflow_run, {
      id: runId,
      run_number: runNumber,
      run_attempt: attempt,
      head_branch: opts.branch ?? "main",
      head_sha: `${runNumber}`.padStart(40, "a"),
      event: "push",
      name: "All post-commit tests",
      path: ".github/workflows/all-post-commit.yaml",
      workflow_id: 99,
      conclusion: opts.conclusion ?? (jobs.some((j) => j.conclusion === "failure") ? "failure" : "success"),
      html_url: `https://github.com/${OWNER}/${REPO}/actions/runs/${runId}`,
    });
    p.workflow_run.head_repository = {
      ...p.repository,
      full_name: opts.fork ? "someone/Hello-World" : p.repository.full_name,
    };
    gh.attempts.set(`${runId}/${attempt}`, jobs);
    await h.deliver("workflow_run", p);
  }

  const fail = (message = TIMEOUT): JobSpec => ({
    name: "ttnn unit tests (N150)",
    conclusion: "failure",
    message,
  });
  const pass: JobSpec = { name: "ttnn unit tests (N150)", conclusion: "success" };

  it("starts one job at the third consecutive failure, on the pool of the job's runner labels, with a tracking issue", async () => {
    await completeRun(1, [fail()]);
    await completeRun(2, [fail(TIMEOUT.replace("412", "418"))]); // same failure, different line number
    expect(await h.jobs()).toHaveLength(0);
    await completeRun(3, [fail()]);
    const jobs = await h.jobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.pool).toBe("n150");
    expect(jobs[0]!.data).toMatchObject({
      source: "ci",
      target: { kind: "issue", number: 501, headSha: "3".padStart(40, "a") },
      request: { deterministic: true, url: expect.stringMatching(/\/actions\/runs\/7003\/job\/70030$/) },
      ci: {
        workflowName: "All post-commit tests",
        jobName: "ttnn unit tests (N150)",
        streak: 3,
        runnerLabels: ["N150", "in-service"],
      },
    });
    expect(gh.issuesCreated).toHaveLength(1);
    expect(gh.issuesCreated[0]).toMatchObject({
      labels: ["autofix-ci"],
      title: expect.stringContaining("ttnn unit tests (N150) fails repeatedly on main"),
    });
    expect(gh.issuesCreated[0]!.body).toContain("device-timeout");
    const status = gh.comments.find((c) => c.issue === 501)!;
    expect(status.body).toContain("3 consecutive failures of All post-commit tests / ttnn unit tests (N150)");
    expect(status.body).not.toContain("requested by @");
    // A fourth failure of the same streak does not start a second job.
    await completeRun(4, [fail()]);
    expect(await h.jobs()).toHaveLength(1);
    expect(h.decisions.at(-1)).toMatchObject({ decision: "duplicate" });
  });

  it("a success in between resets the streak; the earlier pass marks the next job non-deterministic", async () => {
    await completeRun(1, [fail()]);
    await completeRun(2, [fail()]);
    await completeRun(3, [pass]);
    await completeRun(4, [fail()]);
    await completeRun(5, [fail()]);
    expect(await h.jobs()).toHaveLength(0);
    await completeRun(6, [fail()]);
    const [job] = await h.jobs();
    expect(job?.data.request.deterministic).toBe(false);
    expect(job?.data.request.prompt).toContain("run #3: passed recently");
  });

  it("counts a run by its final attempt: a failure cleared by a re-run never starts work", async () => {
    await completeRun(1, [fail()]);
    await completeRun(2, [fail()]);
    await completeRun(3, [fail()], { attempt: 1 });
    // The threshold was reached at attempt 1 of run 3 ...
    expect(await h.jobs()).toHaveLength(1);
    await h.close();
    h = await triggerHarness();
    nockInstallationToken();
    gh = fakeGitHub();
    // ... but on a fresh history where the re-run lands before the count is taken, nothing starts:
    await completeRun(1, [fail()]);
    await completeRun(2, [fail()]);
    gh.attempts.set("7003/1", [fail()]);
    await completeRun(3, [pass], { attempt: 2 });
    expect(await h.jobs()).toHaveLength(0);
    // and a late delivery of attempt 1 does not undo attempt 2.
    await completeRun(3, [fail()], { attempt: 1 });
    expect(await h.jobs()).toHaveLength(0);
    expect(h.decisions.at(-1)).toMatchObject({
      decision: "ignored",
      detail: "attempt 1 is older than the recorded attempt",
    });
  });

  it("infrastructure failures (runner lost, checkout) neither count nor break the streak", async () => {
    await completeRun(1, [fail()]);
    await completeRun(2, [
      {
        name: "ttnn unit tests (N150)",
        conclusion: "failure",
        message: "The runner has received a shutdown signal.",
      },
    ]);
    await completeRun(3, [
      {
        name: "ttnn unit tests (N150)",
        conclusion: "failure",
        step: "Run actions/checkout@v4",
        message: "fatal: could not read Username",
      },
    ]);
    await completeRun(4, [fail()]);
    expect(await h.jobs()).toHaveLength(0);
    await completeRun(5, [fail()]);
    expect(await h.jobs()).toHaveLength(1);
  });

  it("ignores fork heads, the app's own branches and unwatched branches before reading any job", async () => {
    await completeRun(1, [fail()], { fork: true });
    await completeRun(2, [fail()], { branch: "autofix/codertocat-hello-world-1" });
    await completeRun(3, [fail()], { branch: "feature/x" });
    expect(h.decisions.map((d) => d.detail)).toEqual([
      "fork head",
      "the app's own branch",
      "branch feature/x is not watched",
    ]);
    expect(await h.jobs()).toHaveLength(0);
  });

  it("workflow_job deliveries (not subscribed in app.yml) start nothing and call no API", async () => {
    nock.cleanAll();
    nock.disableNetConnect();
    for (const action of ["completed", "in_progress", "queued"]) {
      await h.deliver("workflow_job", examplePayload("workflow_job", action));
    }
    expect(h.decisions).toEqual([]);
    expect(await h.jobs()).toHaveLength(0);
  });
});
