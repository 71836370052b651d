import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningWorker } from "../../src/worker/service.js";
import { ADD_BUGGY, addBugFix, addBugReproduce } from "../helpers/add-bug.js";
import { type FakeAnthropic, type FakeStep, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { makeJob, WorkerTestBed } from "../worker/helpers/harness.js";
import { until } from "../worker/helpers/proc.js";
import { realJobRunner } from "./helpers.js";

/**
 * SIGTERM on a worker with a job in its reproduce phase: the phase finishes, the run stops at
 * the boundary instead of starting the fix phase, and the job goes back to the queue with a
 * comment that says so, well before the shutdown deadline.
 */

let bed: WorkerTestBed | undefined;
let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await bed?.teardown();
  await fake?.close();
  bed = undefined;
  fake = undefined;
});

describe("drain through the production job runner", () => {
  it("a shutdown during reproduce requeues the job at the phase boundary", async () => {
    bed = await new WorkerTestBed().setup();
    mkdirSync(join(bed.remote.clone, "src"));
    const sha = bed.remote.commit("src/add.sh", ADD_BUGGY);
    const testDir = "autofix-tests/add";
    let worker: RunningWorker | undefined;
    let stopping: Promise<void> | undefined;
    const [first, ...rest] = addBugReproduce(testDir);
    const startShutdown: FakeStep = () => {
      // The first model call of the reproduce phase: the worker is told to stop now.
      stopping = worker!.shutdown({ deadlineMs: 120_000 });
      return first as Exclude<FakeStep, (r: never) => unknown>;
    };
    fake = await startFakeAnthropic([startShutdown, ...rest, ...addBugFix(testDir)]);
    worker = await bed.start(realJobRunner(bed, fake));
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    await bed.waitFor("cpu", jobId, ["active", "completed", "failed", "waiting"], 30_000);
    expect(await until(async () => stopping !== undefined, 30_000, 20)).toBe(true);
    await stopping;
    expect(await bed.queues.queue("cpu").getJobState(jobId)).toBe("waiting");
    expect(fake.remaining()).toBe(addBugFix(testDir).length);
    const last = [...bed.gh.comments.values()][0]!.edits.at(-1)!;
    expect(last).toMatch(/Queued/);
    expect(last).toMatch(/was shut down before the job finished; the job is back in the queue/);
  });
});
