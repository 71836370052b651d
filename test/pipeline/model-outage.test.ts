import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isModelOutage, outageStep } from "../../src/agent/spend.js";
import { ADD_BUGGY, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, type FakeStep, outage, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { makeJob, TARGET, WorkerTestBed } from "../worker/helpers/harness.js";
import { until } from "../worker/helpers/proc.js";
import { realJobRunner } from "./helpers.js";

/**
 * A model outage (529 overloaded, 500, a proxy's 502, a dropped connection) after the SDK's
 * own retries does not fail the job for good: the agent waits with backoff for a bounded time
 * (AUTOFIX_MODEL_OUTAGE_MINUTES) and the status comment says it is waiting; past the bound the
 * job fails saying so. The waits are injected with a clock they advance: nothing really waits.
 */

let bed: WorkerTestBed | undefined;
let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await bed?.teardown();
  await fake?.close();
  bed = undefined;
  fake = undefined;
});

/**
 * A sleeper that records the waits and moves a fake clock instead of waiting. While "waiting"
 * it holds until the status comment tells the wait (what a person looking at it sees).
 */
function fakeTime() {
  let t = 1_000_000;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
      const shown = `retrying in ${ms / 1000} s)`;
      expect(await until(() => (bed!.gh.latest(TARGET) ?? "").includes(shown), 10_000)).toBe(true);
    },
  };
}

async function runJob(steps: FakeStep[], outageMinutes: number) {
  bed = await new WorkerTestBed().setup();
  mkdirSync(join(bed.remote.clone, "src"));
  const sha = bed.remote.commit("src/add.sh", ADD_BUGGY);
  fake = await startFakeAnthropic(steps);
  const time = fakeTime();
  await bed.start(
    realJobRunner(bed, fake, {
      settings: { AUTOFIX_MODEL_OUTAGE_MINUTES: outageMinutes },
      options: { sleep: time.sleep, now: time.now },
    }),
    // Every wait is shown before the fake clock moves on: no 5 s between two edits of the comment.
    { throttleMs: 0 },
  );
  const { jobId } = await bed.queues.enqueue(makeJob(sha));
  const job = await bed.waitFor("cpu", jobId, ["completed", "failed"], 60_000);
  // The final edit may land a moment after the job ends (the status writes are queued).
  const final = /### Autofix · (✅|🟡|❌|⏹️|⌛)/;
  await until(() => final.test(bed!.gh.latest(TARGET) ?? ""), 10_000);
  return { job, time, history: bed.gh.history(TARGET), latest: bed.gh.latest(TARGET) ?? "" };
}

describe("model outages are waited out at the job level", () => {
  it("529, a proxy's 502, a dropped connection and a 500: the job waits with backoff, says so, and succeeds", async () => {
    const [first, ...rest] = addBugSession("autofix-tests/add");
    const { job, time, history, latest } = await runJob(
      [...outage(1, 529), first!, ...outage(1, 502), ...outage(1, "drop"), ...outage(1, 500), ...rest],
      5,
    );
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
    expect(latest).toMatch(/### Autofix · ✅ Succeeded/);
    // One wait for the first outage, then 5 s, 10 s for the three failures in a row.
    expect(time.waits).toEqual([5_000, 5_000, 10_000, 20_000]);
    expect(history.some((b) => b.includes("⏸ Waiting for the model API (attempt 2, retrying in 5 s)"))).toBe(
      true,
    );
    expect(history.some((b) => b.includes("⏸ Waiting for the model API (attempt 4, retrying in 20 s)"))).toBe(
      true,
    );
    // Every call of the script was made: nothing was skipped or repeated.
    expect(fake!.remaining()).toBe(0);
  }, 60_000);

  it("an outage longer than AUTOFIX_MODEL_OUTAGE_MINUTES fails the job with a clear message", async () => {
    const { job, time, latest } = await runJob(outage(20, 529), 1);
    // 5 + 10 + 20 s waited; the next try (after 40 s more) would be past the minute.
    expect(time.waits).toEqual([5_000, 10_000, 20_000]);
    expect(fake!.requests).toHaveLength(4);
    expect(job.returnvalue).toMatchObject({ state: "failed" });
    expect(latest).toMatch(/### Autofix · ❌ Failed/);
    expect(latest).toContain(
      "the model API was unavailable for 1 min (4 failed calls; AUTOFIX_MODEL_OUTAGE_MINUTES)",
    );
    expect(latest).not.toContain("⏸ Waiting");
  }, 60_000);

  it("what counts as an outage, and the give-up rule (pure)", () => {
    for (const status of [500, 502, 503, 504, 529, 429, 408])
      expect(isModelOutage({ status, name: "APIError" })).toBe(true);
    for (const status of [400, 401, 403, 404, 413])
      expect(isModelOutage({ status, name: "APIError" })).toBe(false);
    expect(isModelOutage({ name: "APIConnectionError" })).toBe(true);
    expect(isModelOutage({ name: "APIConnectionTimeoutError" })).toBe(true);
    expect(isModelOutage({ name: "APIUserAbortError" })).toBe(false);
    expect(isModelOutage(new Error("boom"))).toBe(false);
    expect(outageStep({ attempt: 1, since: 0, now: 0, budgetMs: 60_000 })).toEqual({ wait: 5_000 });
    expect(outageStep({ attempt: 6, since: 0, now: 0, budgetMs: 600_000 })).toEqual({ wait: 60_000 });
    expect(outageStep({ attempt: 4, since: 0, now: 35_000, budgetMs: 60_000 })).toHaveProperty("giveUp");
  });
});
