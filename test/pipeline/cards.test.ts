import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  calls,
  type FakeAnthropic,
  lastToolResults,
  startFakeAnthropic,
  text,
  tool,
} from "../helpers/fake-anthropic.js";
import { makeJob, WorkerTestBed } from "../worker/helpers/harness.js";
import { realJobRunner } from "./helpers.js";

/**
 * The README promises that a job's commands are pinned to the job's cards. This runs the
 * production path (a real worker, the real job runner, the real agent harness against a fake
 * Messages API) on a card pool with two fake device nodes, and checks what the model's command
 * and the harness's gate actually saw.
 */

let bed: WorkerTestBed | undefined;
let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await bed?.teardown();
  await fake?.close();
  bed = undefined;
  fake = undefined;
});

describe("card pinning through the production job runner", () => {
  it("the model's commands and the gate runs see TT_VISIBLE_DEVICES set to the job's card", async () => {
    bed = await new WorkerTestBed().setup();
    const sha = bed.remote.commit("a.sh", "echo a\n");
    const devDir = join(bed.workDir, "dev-tt");
    mkdirSync(devDir);
    for (const d of ["3", "7"]) writeFileSync(join(devDir, d), "");

    const testDir = "autofix-tests/cards";
    // The reproduction "fails" only when it runs pinned to card 3: if the job's environment
    // did not reach the gate, the base run would pass and the gate would refuse the test.
    const check =
      '[ "$TT_VISIBLE_DEVICES" = 3 ] && { echo "pinned to card 3"; exit 1; }\necho "not pinned"\n';
    fake = await startFakeAnthropic([
      calls(tool("run_command", { command: 'echo "cards=$TT_VISIBLE_DEVICES"' })),
      calls(
        tool("write_file", { path: `${testDir}/tests/check.sh`, content: check }),
        tool("write_file", { path: `${testDir}/README.md`, content: "# cards\n" }),
        tool("write_file", {
          path: `${testDir}/run_test.sh`,
          content: `#!/usr/bin/env bash\nexec bash "$(dirname "$0")/tests/check.sh"\n`,
          executable: true,
        }),
      ),
      calls(
        tool("finish", { test_dir: testDir, command: `bash ${testDir}/run_test.sh`, failure_mode: "pinned" }),
      ),
      // Phase 2: the model gives up, so the job ends partial with the reproduction proven.
      { content: [text("I cannot fix this.")], stop_reason: "end_turn" },
    ]);
    await bed.start(realJobRunner(bed, fake), {
      plans: [{ pool: "n150", cards: 1, concurrency: 1 }],
      host: { deviceDir: devDir, devices: ["3", "7"], ttSmi: null },
    });
    const { jobId } = await bed.queues.enqueue(makeJob(sha, { pool: "n150" }));
    const job = await bed.waitFor("n150", jobId, ["completed", "failed"], 60_000);

    const echoed = fake.requests.flatMap((r) => lastToolResults(r)).find((t) => t.content.includes("cards="));
    expect(echoed?.content).toContain("cards=3");
    expect(job.returnvalue).toMatchObject({ state: "partial" });
    const comment = [...bed.gh.comments.values()][0]!.edits.at(-1)!;
    expect(comment).toMatch(/Partial/);
    expect(comment).toMatch(/failed 2\/2 runs on the base commit/);
  });
});
