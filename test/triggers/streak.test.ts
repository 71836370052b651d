import { describe, expect, it } from "vitest";
import {
  currentStreaks,
  isInfraStep,
  type JobResult,
  mergeRecord,
  type RunRecord,
  streakOf,
} from "../../src/triggers/ci/streak.js";

const FP = "ci:o/r:abc";
function run(
  n: number,
  job: Partial<JobResult> & { conclusion: string },
  extra: Partial<RunRecord> = {},
): RunRecord {
  return {
    runId: 1000 + n,
    runNumber: n,
    attempt: 1,
    headSha: "a".repeat(40),
    conclusion: job.conclusion,
    jobs: [
      {
        name: "unit",
        jobId: n,
        labels: ["N150"],
        infra: false,
        ...(job.conclusion === "failure" ? { fingerprint: FP } : {}),
        ...job,
      },
    ],
    retryCleared: [],
    url: `https://github.com/o/r/actions/runs/${1000 + n}`,
    ...extra,
  };
}

describe("repeated-failure streaks", () => {
  it("counts consecutive failures of the same fingerprint, newest back", () => {
    const h = [
      run(1, { conclusion: "failure" }),
      run(2, { conclusion: "failure" }),
      run(3, { conclusion: "failure" }),
    ];
    const s = streakOf(h, "unit", FP);
    expect(s.count).toBe(3);
    expect(s.startRunId).toBe(1001);
    expect(s.nondeterministic).toBe(false);
  });

  it("a success resets the streak, and a recent pass marks the failure non-deterministic", () => {
    const h = [
      run(1, { conclusion: "failure" }),
      run(2, { conclusion: "success" }),
      run(3, { conclusion: "failure" }),
      run(4, { conclusion: "failure" }),
    ];
    const s = streakOf(h, "unit", FP);
    expect(s.count).toBe(2);
    expect(s.nondeterministic).toBe(true);
    expect(s.flakinessEvidence).toEqual(["run #2: passed recently"]);
  });

  it("infrastructure failures and cancelled jobs neither count nor break a streak", () => {
    const h = [
      run(1, { conclusion: "failure" }),
      run(2, { conclusion: "failure", infra: true, fingerprint: "ci:o/r:infra" }),
      run(3, { conclusion: "cancelled" }),
      run(4, { conclusion: "failure" }),
    ];
    expect(streakOf(h, "unit", FP).count).toBe(2);
  });

  it("a different failure of the same job starts a new streak", () => {
    const h = [
      run(1, { conclusion: "failure" }),
      run(2, { conclusion: "failure", fingerprint: "ci:o/r:other" }),
      run(3, { conclusion: "failure" }),
    ];
    expect(streakOf(h, "unit", FP).count).toBe(1);
  });

  it("a run counts by its final attempt: a re-run that passes replaces the failure and shows flakiness", () => {
    const first = run(3, { conclusion: "failure" });
    const rerun = run(3, { conclusion: "success" }, { attempt: 2, retryCleared: ["unit"] });
    expect(mergeRecord(first, rerun)).toBe(rerun);
    expect(mergeRecord(rerun, first)).toBe(rerun); // a late delivery of attempt 1 does not undo attempt 2
    const h = [run(1, { conclusion: "failure" }), run(2, { conclusion: "failure" }), rerun];
    expect(currentStreaks(h, rerun)).toEqual([]);
    const later = run(4, { conclusion: "failure" });
    const s = streakOf([...h, later], "unit", FP);
    expect(s.count).toBe(1);
    expect(s.flakinessEvidence).toContain("run #3: failed, then passed on a re-run");
  });

  it("recognises setup and checkout steps as infrastructure", () => {
    expect(isInfraStep("Set up job")).toBe(true);
    expect(isInfraStep("Run actions/checkout@v4")).toBe(true);
    expect(isInfraStep("Run pytest tests/ttnn")).toBe(false);
  });
});
