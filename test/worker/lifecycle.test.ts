import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { requestCancel } from "../../src/queue/cancel.js";
import type { StatusView } from "../../src/status/model.js";
import type { StatusTarget } from "../../src/status/sink.js";
import type { JobContext, JobRunner } from "../../src/worker/types.js";
import { commandRunner, makeJob, TARGET, WorkerTestBed } from "./helpers/harness.js";
import { alive, until } from "./helpers/proc.js";

let bed: WorkerTestBed;
afterEach(async () => {
  await bed?.teardown();
});

describe("job lifecycle (real Redis, real git, fake GitHub API)", () => {
  it("runs a job in a worktree at the named SHA, throttles edits and ends in one final comment", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "at the job's commit\n");
    bed.remote.commit("a.txt", "a later commit on main\n");
    const seen: JobContext[] = [];
    const runner: JobRunner = async (ctx) => {
      for (let i = 0; i < 20; i++) ctx.onProgress({ message: `step ${i}`, spend: { tokens: i, costUsd: 0 } });
      return commandRunner("git rev-parse HEAD; cat a.txt", seen)(ctx);
    };
    await bed.start(runner);
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    const job = await bed.waitFor("cpu", jobId, ["completed"]);
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
    expect(job.returnvalue.message).toContain(sha);
    expect(job.returnvalue.message).toContain("at the job's commit");

    const ctx = seen[0]!;
    expect(existsSync(ctx.executor.workspace)).toBe(false);
    expect(ctx.git.remoteUrl).toBe(`${bed.remote.base}/acme/widget.git`);
    const token = await ctx.git.token();
    expect(token).toMatch(/^ghs_/);

    const comments = [...bed.gh.comments.values()];
    expect(comments).toHaveLength(1);
    const edits = comments[0]!.edits;
    // 21 progress events in a burst: the throttle keeps it to a handful of edits.
    expect(edits.length).toBeLessThanOrEqual(4);
    const last = edits.at(-1)!;
    expect(last).toContain(`<!-- autofix:status ${TARGET} -->`);
    expect(last).toMatch(/Succeeded/);
    expect(last).toMatch(/elapsed \d+s/);
    expect(last).toMatch(/model spend 1,234 tokens/);
    expect(last).toContain("[Draft PR](https://github.com/acme/widget/pull/10)");
    expect(edits.some((e) => /Running/.test(e))).toBe(true);
    for (const e of edits) expect(e).not.toContain(token);
  });

  it("cancel mid-command kills the process tree and ends in cancelled; waiting jobs are removed", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const pidFile = join(bed.workDir, "grandchild.pid");
    await bed.start(commandRunner(`sleep 60 & echo $! > '${pidFile}'; wait`));
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    expect(await until(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "")).toBe(true);
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    expect(alive(grandchild)).toBe(true);

    expect(await requestCancel(bed.redis, bed.prefix, "cpu", jobId)).toBe("signalled-running");
    const job = await bed.waitFor("cpu", jobId, ["completed"]);
    expect(job.returnvalue).toMatchObject({ state: "cancelled" });
    expect(await until(() => !alive(grandchild))).toBe(true);
    expect(bed.gh.latest(TARGET)).toMatch(/Cancelled[\s\S]*running commands were stopped/);

    // A job nobody has taken yet (no n150 worker) is removed from its queue.
    const n150Job = makeJob(sha, { pool: "n150" });
    const waiting = await bed.queues.enqueue(n150Job);
    expect(await requestCancel(bed.redis, bed.prefix, "n150", waiting.jobId)).toBe("removed-waiting");
    expect(await bed.queues.queue("n150").getJob(waiting.jobId)).toBeUndefined();
    // The fingerprint is free again: asking anew queues a new job.
    expect(await bed.queues.enqueue(n150Job)).toMatchObject({ deduplicated: false });
    expect(await requestCancel(bed.redis, bed.prefix, "cpu", "no-such-job")).toBe("not-found");
    expect(await requestCancel(bed.redis, bed.prefix, "cpu", jobId)).toBe("not-found");
  });

  it("a worker writes every status view through the sink it is given", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const writes: Array<{ target: StatusTarget; view: StatusView }> = [];
    await bed.start(commandRunner("echo via the sink"), {
      statusSinks: (target) => ({
        async write(view) {
          writes.push({ target, view });
        },
      }),
    });
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    await bed.waitFor("cpu", jobId, ["completed"]);
    expect(bed.gh.comments.size).toBe(0);
    expect(writes.map((w) => w.target)).toEqual(
      writes.map(() => ({ owner: "acme", repo: "widget", number: 9, installationId: 77 })),
    );
    expect(writes[0]!.view).toMatchObject({ state: "running", target: TARGET, jobId });
    expect(writes.at(-1)!.view).toMatchObject({ state: "succeeded", message: "command said: via the sink" });
  });

  it("an invalid job fails permanently with a comment that says why", async () => {
    bed = await new WorkerTestBed().setup();
    await bed.start(commandRunner("true"));
    const bad = { ...makeJob("not-a-sha"), statusCommentId: undefined };
    const added = await bed.queues.queue("cpu").add("fix", bad as never, { attempts: 3 });
    const job = await bed.waitFor("cpu", added.id!, ["failed"]);
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/invalid job data: .*headSha.*40-character/);
    expect(bed.gh.latest(TARGET)).toMatch(/Failed[\s\S]*the queued job is not valid[\s\S]*headSha/);
  });
});
