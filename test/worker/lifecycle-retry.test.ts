import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { JobContext } from "../../src/worker/types.js";
import { commandRunner, makeJob, TARGET, WorkerTestBed } from "./helpers/harness.js";
import { alive, until } from "./helpers/proc.js";

let bed: WorkerTestBed;
afterEach(async () => {
  await bed?.teardown();
});

describe("job lifecycle: retries, shutdown and card hygiene", () => {
  it("shutdown during a job leaves a truthful comment and the job goes back to the queue, then runs once", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const started = join(bed.workDir, "started");
    const first = await bed.start(commandRunner(`touch '${started}'; sleep 60`), { shutdownDeadlineMs: 300 });
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    expect(await until(() => existsSync(started))).toBe(true);
    await first.shutdown();
    expect(await bed.queues.queue("cpu").getJobState(jobId)).toBe("waiting");
    expect(bed.gh.latest(TARGET)).toMatch(
      /Queued[\s\S]*was shut down before the job finished; the job is back in the queue/,
    );

    // The second worker tells the hand-over as one while it runs: nobody "stopped responding".
    const resumed = /Resumed after worker \S+ was shut down and put the job back in the queue/;
    let shown = false;
    const second = commandRunner("echo second worker");
    await bed.start(async (ctx) => {
      shown = await until(() => resumed.test(bed.gh.latest(TARGET) ?? ""), 10_000);
      return second(ctx);
    });
    const job = await bed.waitFor("cpu", jobId, ["completed"]);
    expect(job.returnvalue).toMatchObject({ state: "succeeded", message: "command said: second worker" });
    expect(bed.gh.latest(TARGET)).toMatch(/Succeeded/);
    expect(shown).toBe(true);
    expect(bed.gh.history(TARGET).some((b) => /stopped responding/.test(b))).toBe(false);
  });

  it("a second stop signal aborts the running job at once instead of waiting for the deadline", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    const started = join(bed.workDir, "started");
    const pidFile = join(bed.workDir, "sleep.pid");
    // The deadline is far beyond the test's timeout: only the second signal ends the job in time.
    const first = await bed.start(
      commandRunner(`touch '${started}'; echo $$ > '${pidFile}'; exec sleep 600`),
      {
        shutdownDeadlineMs: 600_000,
      },
    );
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    expect(await until(() => existsSync(started) && readFileSync(pidFile, "utf8").trim() !== "")).toBe(true);
    const sleeper = Number(readFileSync(pidFile, "utf8"));
    const stopping = first.shutdown();
    expect(first.abortRunning()).toBe(1);
    await stopping;
    expect(await bed.queues.queue("cpu").getJobState(jobId)).toBe("waiting");
    // The job's command is gone with it, and the comment tells the hand-over.
    expect(await until(() => !alive(sleeper))).toBe(true);
    await bed.outboxDelivered();
    expect(bed.gh.latest(TARGET)).toMatch(
      /Queued[\s\S]*was shut down before the job finished; the job is back in the queue/,
    );
  });

  it("a thrown error is retried with a truthful comment, and the last attempt ends failed", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    let calls = 0;
    await bed.start(async () => {
      calls++;
      throw new Error(`model API unreachable (call ${calls})`);
    });
    const added = await bed.queues
      .queue("cpu")
      .add("fix", makeJob(sha), { attempts: 2, backoff: { type: "fixed", delay: 3_000 } });
    // The comment shows the retry while the job waits for it (the outbox keeps only the newest
    // view of a comment, so the backoff is long enough for this one to be delivered).
    expect(
      await until(() =>
        bed.gh
          .history(TARGET)
          .some((b) =>
            /Attempt 1\/2 failed: model API unreachable \(call 1\)\. Queued for retry 2\/2/.test(b),
          ),
      ),
    ).toBe(true);
    const job = await bed.waitFor("cpu", added.id!, ["failed"]);
    expect(calls).toBe(2);
    expect(job.attemptsMade).toBe(2);
    expect(bed.gh.latest(TARGET)).toMatch(
      /Failed[\s\S]*Failed after 2 attempts: model API unreachable \(call 2\)/,
    );
  });

  it("an unhealthy host puts the job back and stops taking jobs", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    let calls = 0;
    const devDir = join(bed.workDir, "dev");
    await bed.start(
      async () => {
        calls++;
        return { state: "succeeded", message: "ok" };
      },
      {
        plans: [{ pool: "n150", cards: 1, concurrency: 1 }],
        host: { deviceDir: devDir, devices: ["0"], ttSmi: null, recheckMs: 100 },
      },
    );
    const { jobId } = await bed.queues.enqueue(makeJob(sha, { pool: "n150" }));
    expect(await until(() => /failed its hardware check/.test(bed.gh.latest(TARGET) ?? ""))).toBe(true);
    expect(await bed.queues.queue("n150").getJobState(jobId)).toBe("waiting");
    expect(calls).toBe(0);
    // The card comes back: the worker resumes and runs the job.
    const { mkdirSync } = await import("node:fs");
    mkdirSync(devDir, { recursive: true });
    writeFileSync(join(devDir, "0"), "");
    const job = await bed.waitFor("n150", jobId, ["completed"]);
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
    expect(calls).toBe(1);
  });
  it("card pools get their cards pinned, and the repository's reset command runs after the job", async () => {
    bed = await new WorkerTestBed().setup();
    const marker = join(bed.workDir, "reset-ran");
    bed.remote.commit("a.txt", "x\n");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(bed.remote.clone, ".github"), { recursive: true });
    const sha = bed.remote.commit(
      ".github/autofix.yml",
      `commands:\n  reset: "echo $AUTOFIX_CARDS > '${marker}'"\n`,
    );
    const devDir = join(bed.workDir, "dev");
    mkdirSync(devDir);
    for (const d of ["0", "1"]) writeFileSync(join(devDir, d), "");
    const seen: JobContext[] = [];
    await bed.start(commandRunner("true", seen), {
      plans: [{ pool: "n150", cards: 1, concurrency: 2 }],
      host: {
        deviceDir: devDir,
        devices: ["0", "1"],
        ttSmi: null,
        env: { PATH: process.env.PATH, TT_VISIBLE_DEVICES: "all" },
      },
    });
    const { jobId } = await bed.queues.enqueue(makeJob(sha, { pool: "n150" }));
    await bed.waitFor("n150", jobId, ["completed"]);
    expect(seen[0]?.cards).toEqual(["0"]);
    expect(seen[0]?.executor.jobEnv).toEqual({ TT_VISIBLE_DEVICES: "0" });
    expect(await until(() => existsSync(marker))).toBe(true);
    expect(readFileSync(marker, "utf8")).toBe("0\n");
  });
  it("a pipeline that stops at a phase boundary on drain is requeued without waiting for the deadline", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    let started = false;
    const w = await bed.start(
      async (ctx) => {
        started = true;
        await new Promise((r) => ctx.drain.addEventListener("abort", r, { once: true }));
        throw new Error("stopping after the reproduce phase");
      },
      { shutdownDeadlineMs: 20_000 },
    );
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    expect(await until(() => started)).toBe(true);
    const t0 = Date.now();
    await w.shutdown();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await bed.queues.queue("cpu").getJobState(jobId)).toBe("waiting");
    expect(bed.gh.latest(TARGET)).toMatch(
      /was shut down before the job finished; the job is back in the queue/,
    );
  });

  it("a token in an error never reaches the comment or Redis", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    let token = "";
    await bed.start(async (ctx) => {
      token = await ctx.git.token();
      throw new Error(
        `git push https://x-access-token:${token}@github.com/acme/widget.git failed (${token})`,
      );
    });
    const added = await bed.queues.queue("cpu").add("fix", makeJob(sha), { attempts: 1 });
    const job = await bed.waitFor("cpu", added.id!, ["failed"]);
    expect(token).toMatch(/^ghs_/);
    expect(job.failedReason).toContain("[REDACTED]");
    expect(job.failedReason).not.toContain(token);
    const last = bed.gh.latest(TARGET)!;
    expect(last).toMatch(/Failed: git push/);
    expect(last).not.toContain(token);
  });
});
