import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ADD_BUGGY, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { makeJob, TARGET, WorkerTestBed } from "../worker/helpers/harness.js";
import { until } from "../worker/helpers/proc.js";
import { realJobRunner } from "./helpers.js";

/**
 * Publishing tells the truth: a PR that GitHub created but answered 502 for is found by its
 * head branch and linked; a proven fix that could not be published is headlined exactly that,
 * not "no fix passed every gate". The production job runner, a real worker, the fake GitHub.
 */

let bed: WorkerTestBed | undefined;
let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await bed?.teardown();
  await fake?.close();
  bed = undefined;
  fake = undefined;
});

async function runOneJob(setupFaults: (b: WorkerTestBed) => void) {
  bed = await new WorkerTestBed().setup();
  mkdirSync(join(bed.remote.clone, "src"));
  const sha = bed.remote.commit("src/add.sh", ADD_BUGGY);
  fake = await startFakeAnthropic(addBugSession("autofix-tests/add"));
  setupFaults(bed);
  await bed.start(realJobRunner(bed, fake));
  const { jobId } = await bed.queues.enqueue(makeJob(sha));
  const job = await bed.waitFor("cpu", jobId, ["completed", "failed"], 60_000);
  // The final edit may land a moment after the job ends (the status writes are queued).
  const final = /### Autofix · (✅|🟡|❌|⏹️|⌛)/;
  await until(() => final.test(bed!.gh.latest(TARGET) ?? ""), 10_000);
  return { job, comment: bed.gh.latest(TARGET) ?? "" };
}

describe("publishing tells the truth", () => {
  it("a PR GitHub created but answered 502 for is found by its head branch and linked", async () => {
    const { job, comment } = await runOneJob((b) =>
      b.gh.fault({ method: "POST", path: /\/pulls$/, status: 502, after: true, times: 1 }),
    );
    // GitHub has exactly one PR, created by the answer the worker never saw.
    expect(bed!.gh.pulls).toHaveLength(1);
    const pr = bed!.gh.pulls[0]!;
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
    expect(comment).toMatch(/### Autofix · ✅ Succeeded/);
    expect(comment).toContain(`/pull/${pr.number}`);
    expect(comment).not.toMatch(/could not be published/);
  }, 60_000);

  it("a proven fix whose PR could not be created is headlined as exactly that, with the pushed branch", async () => {
    const { job, comment } = await runOneJob((b) =>
      b.gh.fault({ method: "POST", path: /\/pulls$/, status: 502 }),
    );
    expect(bed!.gh.pulls).toHaveLength(0);
    expect(job.returnvalue).toMatchObject({ state: "partial" });
    expect(comment).toMatch(/### Autofix · 🟡 Partial: the fix was proven, but it could not be published/);
    expect(comment).not.toMatch(/no fix passed every gate/);
    expect(comment).toMatch(/The fix passed every gate, but it could not be published: .*502/);
    // The proven commit was pushed before the PR failed: the comment names its branch.
    expect(comment).toMatch(/The proven commit [0-9a-f]{12} is on branch `autofix\//);
  }, 60_000);
});
