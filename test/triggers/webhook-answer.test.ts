import { afterEach, describe, expect, it } from "vitest";
import { Outbox } from "../../src/status/outbox/index.js";
import { examplePayload } from "../helpers/github.js";
import { until } from "../worker/helpers/proc.js";
import {
  commandPayload,
  deliveryId,
  OWNER,
  REPO,
  replies,
  statusComments,
  type WebhookBed,
  webhookBed,
  writes,
} from "./http-harness.js";

/**
 * What the webhook answers (issue 16): 2xx only once the job is durably enqueued; GitHub reads
 * before the enqueue are bounded, and past them (a 5xx, a stall, a budget spent) the delivery
 * answers 503 so GitHub shows it failed and it can be redelivered; a redelivery makes exactly one
 * job. Real HTTP to Probot's middleware, the production Octokit, the fake GitHub with faults.
 */

let bed: WebhookBed | undefined;
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

const branchPath = `/repos/${OWNER}/${REPO}/branches/main`;
const configPath = `/repos/${OWNER}/${REPO}/contents/.github%2Fautofix.yml`;
const permissionPath = `/repos/${OWNER}/${REPO}/collaborators/${OWNER}/permission`;

describe("the webhook's answer", () => {
  it("a 502 on the branch lookup: 503, no job, one try (no Octokit retries); the redelivery makes exactly one job", async () => {
    bed = await webhookBed();
    const gh = bed.gh;
    gh.fault({ method: "GET", path: branchPath, status: 502, times: 1 });
    const id = deliveryId("branch-502");

    const first = await bed.post(commandPayload(1), { id });
    expect(first.status).toBe(503);
    expect(first.body).toContain("GitHub answered 502 to GET /repos/Codertocat/Hello-World/branches/main");
    expect(await bed.jobs()).toHaveLength(0);
    expect(gh.requests.filter((r) => r.path === branchPath)).toHaveLength(1);
    // Nothing was written to GitHub inside the request.
    expect(writes(gh)).toEqual([]);

    const again = await bed.post(commandPayload(1), { id });
    expect(again.status).toBe(200);
    const jobs = await bed.jobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.data.target).toMatchObject({ number: 1, headSha: "c0ffee".padEnd(40, "0") });

    bed.startDrainer({ writeMs: 5, contentMs: 5 });
    await until(() => statusComments(gh, 1).length === 1 && replies(gh, 1).length === 1, 10_000);
    expect(statusComments(gh, 1)[0]).toContain("⏳ Queued");
    // The person was told once that the first attempt queued nothing; no "already queued" reply.
    expect(replies(gh, 1)[0]).toContain("could not read what it needs from GitHub just now");
    await until(() => gh.reactions.length === 1, 10_000);
    expect(gh.reactions).toEqual([{ commentId: 7_000_001, content: "eyes" }]);
  });

  it("a 500 on the config read: 503 and no job", async () => {
    bed = await webhookBed();
    bed.gh.fault({ method: "GET", path: configPath, status: 500 });
    const answer = await bed.post(commandPayload(2));
    expect(answer.status).toBe(503);
    expect(await bed.jobs()).toHaveLength(0);
    expect(bed.gh.requests.filter((r) => r.path === configPath)).toHaveLength(1);
  });

  it("a stalled permission read: 503 from the read limit (not Probot's 202), no job; the redelivery makes one job", async () => {
    bed = await webhookBed({
      settings: { AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS: 3, AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS: 1.5 },
    });
    bed.gh.fault({ method: "GET", path: permissionPath, stall: true, times: 1 });
    const id = deliveryId("stall");
    const first = await bed.post(commandPayload(3), { id });
    expect(first.status).toBe(503);
    expect(first.body).toContain(`GitHub did not answer GET ${permissionPath} within 1.5 s`);
    expect(await bed.jobs()).toHaveLength(0);
    // The stalled request was given up (its connection closed), not left hanging.
    await until(() => bed!.gh.stalled() === 0);
    expect(bed.gh.stalled()).toBe(0);

    const again = await bed.post(commandPayload(3), { id });
    expect(again.status).toBe(200);
    expect(await bed.jobs()).toHaveLength(1);
  });

  it("reads that each answer late but in time still make the job", async () => {
    bed = await webhookBed({
      settings: { AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS: 5, AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS: 3 },
    });
    for (const path of [permissionPath, configPath, branchPath])
      bed.gh.fault({ method: "GET", path, delayMs: 150 });
    const answer = await bed.post(commandPayload(4));
    expect(answer.status).toBe(200);
    expect(await bed.jobs()).toHaveLength(1);
  });

  it("reads that each fit the per-request timeout but together overrun the delivery's budget: 503, no job", async () => {
    bed = await webhookBed({
      settings: { AUTOFIX_WEBHOOK_READ_BUDGET_SECONDS: 0.6, AUTOFIX_WEBHOOK_REQUEST_TIMEOUT_SECONDS: 3 },
    });
    // The permission and config reads run side by side; the branch lookup comes after both.
    bed.gh.fault({ method: "GET", path: permissionPath, delayMs: 350 });
    bed.gh.fault({ method: "GET", path: branchPath, delayMs: 350 });
    const answer = await bed.post(commandPayload(5));
    expect(answer.status).toBe(503);
    expect(answer.body).toContain("GitHub reads took longer than the webhook's 0.6 s budget");
    expect(await bed.jobs()).toHaveLength(0);
  });

  it("a failure after the enqueue (Redis refuses the status write once): 5xx; the redelivery makes no second job and no duplicate reply", async () => {
    let failures = 1;
    bed = await webhookBed({
      outbox: (redis, prefix) =>
        new (class extends Outbox {
          override async status(...args: Parameters<Outbox["status"]>) {
            if (failures-- > 0) throw new Error("Redis blip: the status view was not stored");
            return super.status(...args);
          }
        })({ redis, prefix }),
    });
    const id = deliveryId("after-enqueue");
    const first = await bed.post(commandPayload(6), { id });
    expect(first.status).toBe(500);
    const [job] = await bed.jobs();
    expect(job).toBeDefined();

    const again = await bed.post(commandPayload(6), { id });
    expect(again.status).toBe(200);
    const jobs = await bed.jobs();
    expect(jobs.map((j) => j.id)).toEqual([job!.id]);
    expect(bed.decisions.at(-1)).toMatchObject({ decision: "enqueued", jobId: job!.id });

    bed.startDrainer({ writeMs: 5, contentMs: 5 });
    await until(() => statusComments(bed!.gh, 6).length === 1 && bed!.gh.reactions.length === 1, 10_000);
    expect(statusComments(bed.gh, 6)[0]).toContain(job!.id);
    expect(replies(bed.gh, 6)).toEqual([]);

    // A different delivery for the same target is a duplicate trigger: a reply with the link.
    const other = await bed.post(commandPayload(6), { id: deliveryId("other") });
    expect(other.status).toBe(200);
    expect(await bed.jobs()).toHaveLength(1);
    await until(() => replies(bed!.gh, 6).length === 1, 10_000);
    const statusId = [...bed.gh.comments.values()].find((c) => c.body.includes("<!-- autofix:status"))!.id;
    expect(replies(bed.gh, 6)[0]).toContain(`already queued or running (job \`${job!.id}\``);
    expect(replies(bed.gh, 6)[0]).toContain(
      `https://github.com/${OWNER}/${REPO}/issues/6#issuecomment-${statusId}`,
    );
  });

  it("a denied person gets a reply through the outbox: 200, no job, no write inside the request", async () => {
    bed = await webhookBed();
    bed.gh.permissions.set(OWNER, "read");
    const answer = await bed.post(commandPayload(7));
    expect(answer.status).toBe(200);
    expect(await bed.jobs()).toHaveLength(0);
    expect(writes(bed.gh)).toEqual([]);
    bed.startDrainer({ writeMs: 5, contentMs: 5 });
    await until(() => replies(bed!.gh, 7).length === 1, 10_000);
    expect(replies(bed.gh, 7)[0]).toContain("only people with write access");
  });
});

describe("the label and CI runs, bounded the same way", () => {
  it("the trigger label with a 502 on the branch lookup: 503, no job, one reply saying to add the label again", async () => {
    bed = await webhookBed();
    bed.gh.fault({ method: "GET", path: branchPath, status: 502 });
    const p = examplePayload("issues", "labeled");
    p.label.name = "autofix";
    p.repository.default_branch = "main";
    p.issue.body = "RuntimeError: the gather op timed out";
    const id = deliveryId("label");
    expect((await bed.post(p, { id, event: "issues" })).status).toBe(503);
    expect((await bed.post(p, { id, event: "issues" })).status).toBe(503);
    expect(await bed.jobs()).toHaveLength(0);
    bed.startDrainer({ writeMs: 5, contentMs: 5 });
    const n = p.issue.number as number;
    // Two failed attempts of one delivery: one reply, once the outbox has nothing left.
    await until(
      async () => replies(bed!.gh, n).length > 0 && (await bed!.outbox.depth()).pending.reply === 0,
      10_000,
    );
    expect(replies(bed.gh, n)).toHaveLength(1);
    expect(replies(bed.gh, n)[0]).toContain("remove the `autofix` label and add it again");
  });

  it("another label during GitHub trouble: 503 as well (the config that names the trigger label could not be read), and no reply", async () => {
    bed = await webhookBed();
    bed.gh.fault({ method: "GET", path: configPath, status: 503 });
    const p = examplePayload("issues", "labeled");
    p.label.name = "bug";
    expect((await bed.post(p, { event: "issues" })).status).toBe(503);
    // The answer comes after the handler's writes: none was put in the outbox.
    const { pending } = await bed.outbox.depth();
    expect(pending.reply).toBe(0);
    expect(await bed.jobs()).toHaveLength(0);
  });

  it("a CI run whose job list answers 500: 503 and the run is not recorded, so the redelivery counts it once", async () => {
    bed = await webhookBed();
    const p = examplePayload("workflow_run", "completed");
    p.repository.default_branch = "main";
    Object.assign(p.workflow_run, {
      id: 7001,
      run_number: 1,
      run_attempt: 1,
      head_branch: "main",
      head_sha: "1".padStart(40, "a"),
      event: "push",
      name: "All post-commit tests",
      path: ".github/workflows/all-post-commit.yaml",
      workflow_id: 99,
      conclusion: "failure",
    });
    p.workflow_run.head_repository = { ...p.repository };
    bed.gh.jobs.set(70010, {
      id: 70010,
      runId: 7001,
      name: "ttnn unit tests (N150)",
      conclusion: "failure",
      labels: ["N150"],
      log: "",
      annotations: ["TT_THROW: timeout waiting for the device"],
    });
    bed.gh.attempts.set("7001/1", [70010]);
    const jobsPath = `/repos/${OWNER}/${REPO}/actions/runs/7001/attempts/1/jobs`;
    bed.gh.fault({ method: "GET", path: jobsPath, status: 500, times: 1 });
    const id = deliveryId("ci");
    expect((await bed.post(p, { id, event: "workflow_run" })).status).toBe(503);
    expect(bed.gh.requests.filter((r) => r.path === jobsPath)).toHaveLength(1);
    expect((await bed.post(p, { id, event: "workflow_run" })).status).toBe(200);
    expect(bed.decisions.at(-1)).toMatchObject({ decision: "streak-recorded", detail: "run #1 failure" });
  });
});

describe("a burst", () => {
  it("20 concurrent /autofix commands with the production throttle: every one acknowledged 200 before any GitHub write; then one status comment each, before its reaction", async () => {
    bed = await webhookBed();
    const gh = bed.gh;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => bed!.post(commandPayload(100 + i), { id: deliveryId("burst") })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(await bed.jobs()).toHaveLength(20);
    // The acknowledgements did not wait for GitHub's write throttle: no write had been made.
    expect(writes(gh)).toEqual([]);

    bed.startDrainer({ writeMs: 5, contentMs: 5 });
    const done = () =>
      Array.from({ length: 20 }, (_, i) => statusComments(gh, 100 + i).length).every((n) => n === 1) &&
      gh.reactions.length === 20;
    await until(done, 15_000);
    for (let i = 0; i < 20; i++) {
      const n = 100 + i;
      expect(statusComments(gh, n)).toHaveLength(1);
      expect(statusComments(gh, n)[0]).toContain("⏳ Queued");
    }
    // Status comments go out before reactions: each issue's comment precedes its 👀.
    const w = writes(gh);
    for (let i = 0; i < 20; i++) {
      const n = 100 + i;
      const comment = w.find(
        (r) => r.method === "POST" && r.path === `/repos/${OWNER}/${REPO}/issues/${n}/comments`,
      );
      const reaction = w.find(
        (r) =>
          r.method === "POST" &&
          r.path === `/repos/${OWNER}/${REPO}/issues/comments/${7_000_000 + n}/reactions`,
      );
      expect(comment!.seq).toBeLessThan(reaction!.seq);
    }
  });
});
