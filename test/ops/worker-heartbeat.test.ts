import { afterEach, describe, expect, it } from "vitest";
import { listWorkers } from "../../src/ops/heartbeat.js";
import type { JobRunner } from "../../src/worker/types.js";
import { makeJob, WorkerTestBed } from "../worker/helpers/harness.js";

let bed: WorkerTestBed;
afterEach(async () => {
  await bed?.teardown();
});

describe("the worker process's heartbeat", () => {
  it("lists the running worker with its pools and cards, and drops it on shutdown", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.txt", "x\n");
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const runner: JobRunner = async () => {
      await released;
      return { state: "succeeded", message: "done" };
    };
    const worker = await bed.start(runner, {
      name: "tt-test:1",
      host: { deviceDir: `${bed.workDir}/none`, devices: ["0", "1"], ttSmi: null },
    });

    const [idle] = await listWorkers(bed.redis, bed.prefix);
    expect(idle).toMatchObject({ id: "tt-test:1", pools: ["cpu"], cards: ["0", "1"], currentJob: null });

    // (currentJob is refreshed on the 10 s heartbeat interval, too slow to wait for here; the
    // heartbeat tests cover the callback.)
    const { jobId } = await bed.queues.enqueue(makeJob(sha));
    await bed.waitFor("cpu", jobId, ["active"]);
    release();
    await bed.waitFor("cpu", jobId, ["completed"]);
    await worker.shutdown({ deadlineMs: 100 });
    expect(await listWorkers(bed.redis, bed.prefix)).toEqual([]);
  });
});
