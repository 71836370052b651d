import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ADD_BUGGY, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { realJobRunner } from "../pipeline/helpers.js";
import { makeJob, TARGET, WorkerTestBed } from "../worker/helpers/harness.js";
import { until } from "../worker/helpers/proc.js";

/**
 * Before an automatic job opens its PR, the worker looks again for people's work: a PR that
 * appeared while the job ran holds the fix PR back. The production job runner, a real worker,
 * the fake GitHub (its search API).
 */

let bed: WorkerTestBed | undefined;
let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await bed?.teardown();
  await fake?.close();
  bed = undefined;
  fake = undefined;
});

const TEST_ID = "tests/test_add.py::test_add_small";

async function runCiJob(setup: (b: WorkerTestBed) => void, source: "ci" | "comment" = "ci") {
  bed = await new WorkerTestBed().setup();
  mkdirSync(join(bed.remote.clone, "src"));
  const sha = bed.remote.commit("src/add.sh", ADD_BUGGY);
  fake = await startFakeAnthropic(addBugSession("autofix-tests/add"));
  setup(bed);
  await bed.start(realJobRunner(bed, fake));
  const job = makeJob(sha, {
    source,
    request: {
      deterministic: true,
      prompt: "The CI job failed 3 consecutive runs",
      rawLogs: `FAILED ${TEST_ID} - AssertionError: add 2 3 gave -1`,
    },
    ...(source === "ci"
      ? {
          ci: {
            workflowName: "unit",
            jobName: "test (cpu)",
            runId: 1,
            runnerLabels: ["ubuntu-latest"],
            errorSignature: "AssertionError",
            streak: 3,
          },
        }
      : {}),
  });
  const { jobId } = await bed.queues.enqueue(job);
  const done = await bed.waitFor("cpu", jobId, ["completed", "failed"], 60_000);
  const final = /### Autofix · (✅|🟡|❌|⏹️|⌛)/;
  await until(() => final.test(bed!.gh.latest(TARGET) ?? ""), 10_000);
  return { job: done, comment: bed.gh.latest(TARGET) ?? "" };
}

describe("people's work at publish time", () => {
  it("an automatic job whose failure an open human PR names pushes the proven fix but opens no PR, and says why", async () => {
    const { job, comment } = await runCiJob((b) => {
      b.gh.search.items.push({
        number: 77,
        title: "Fix add for small numbers",
        body: `Fixes ${TEST_ID}`,
        user: { login: "dev", type: "User" },
        pull_request: { url: "x" },
      });
    });
    expect(bed!.gh.search.queries).toHaveLength(1);
    expect(bed!.gh.search.queries[0]).toContain(`repo:acme/widget is:open "${TEST_ID}"`);
    expect(bed!.gh.search.queries[0]).toContain('"#9"');
    expect(bed!.gh.pulls).toHaveLength(0);
    expect(job.returnvalue).toMatchObject({ state: "partial" });
    expect(comment).toContain("open work by others already references this failure (PR #77)");
    expect(comment).toMatch(/The proven commit [0-9a-f]{12} is on branch `autofix\//);
  }, 60_000);

  it("a person's request is not held back: they asked for this PR", async () => {
    const { job } = await runCiJob((b) => {
      b.gh.search.items.push({
        number: 77,
        title: "x",
        user: { login: "dev", type: "User" },
        pull_request: {},
      });
    }, "comment");
    expect(bed!.gh.search.queries).toHaveLength(0);
    expect(bed!.gh.pulls).toHaveLength(1);
    expect(job.returnvalue).toMatchObject({ state: "succeeded" });
  }, 60_000);
});
