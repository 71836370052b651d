import { afterEach, describe, expect, it } from "vitest";
import { commandRunner, makeJob, WorkerTestBed } from "../worker/helpers/harness.js";

/**
 * A push-triggered job on a worker: the commit target travels through Redis, the worker runs it
 * at the pushed commit, and every status (running, final) lands in the one commit comment,
 * through the outbox, under the same marker contract as an issue's status comment.
 */

let bed: WorkerTestBed;
afterEach(async () => {
  await bed?.teardown();
});

describe("a push-triggered job on a worker", () => {
  it("runs at the pushed commit and ends in one final status comment on that commit", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("info.json", '{"deterministic": true}\n');
    await bed.start(commandRunner("git rev-parse HEAD"));
    const { jobId } = await bed.queues.enqueue(
      makeJob(sha, {
        source: "push",
        target: {
          kind: "commit",
          headSha: sha,
          headRef: "ask-autofix",
          infoPath: ".github/autofix/info.json",
        },
        fingerprint: `commit:acme/widget@${sha}`,
      }),
    );
    const job = await bed.waitFor("cpu", jobId, ["completed"]);
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
    expect(job.returnvalue.message).toContain(sha);

    const target = `acme/widget@${sha}`;
    const onCommit = [...bed.gh.comments.values()].filter((c) => c.issue === target);
    expect(onCommit).toHaveLength(1);
    expect([...bed.gh.comments.values()].filter((c) => c.issue !== target)).toEqual([]);
    const body = onCommit[0]!.body;
    expect(body).toContain(`<!-- autofix:status ${target} -->`);
    expect(body).toContain("Succeeded");
    expect(body).toContain("push of `.github/autofix/info.json` to `ask-autofix`");
    expect(body).toContain("Push a changed info.json to run it again.");
    expect(body).not.toContain("/autofix retry");
  });

  it("an invalid commit job still gets its failed status on the commit", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    await bed.start(commandRunner("true"));
    const bad = {
      ...makeJob(sha, { target: { kind: "commit", headSha: sha, headRef: "ask" } }),
      request: { prompt: "" },
    };
    const q = bed.queues.queue("cpu");
    const added = await q.add("fix", bad as never, { jobId: "bad-commit-job" });
    await bed.waitFor("cpu", added.id!, ["failed", "completed"]);
    const target = `acme/widget@${sha}`;
    const onCommit = [...bed.gh.comments.values()].filter((c) => c.issue === target);
    expect(onCommit).toHaveLength(1);
    expect(onCommit[0]!.body).toContain(`<!-- autofix:status ${target} -->`);
    expect(onCommit[0]!.body).toMatch(/Failed/);
  });
});
