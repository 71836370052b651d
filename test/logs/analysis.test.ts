import { describe, expect, it } from "vitest";
import { analyzeExecutions, markdownBar, skusOf } from "../../src/logs/analysis.js";
import type { RunRecord } from "../../src/triggers/ci/streak.js";
import { historyExecutions, renderTrackingIssue } from "../../src/triggers/ci/tracking-issue.js";

/** The CI trigger's recorded runs of one workflow: what the tracking issue's table is made from. */
function record(
  runNumber: number,
  jobs: RunRecord["jobs"],
  retryCleared: string[] = [],
  attempt = 1,
): RunRecord {
  return {
    runId: 9000 + runNumber,
    runNumber,
    attempt,
    headSha: String(runNumber).padStart(40, "a"),
    conclusion: jobs.some((j) => j.conclusion === "failure") ? "failure" : "success",
    jobs,
    retryCleared,
    url: `https://github.com/o/r/actions/runs/${9000 + runNumber}`,
  };
}
const job = (name: string, id: number, conclusion: string, fp?: string): RunRecord["jobs"][number] => ({
  name,
  jobId: id,
  conclusion,
  labels: ["N300", "in-service"],
  infra: false,
  ...(fp
    ? {
        fingerprint: fp,
        errorClass: "device-timeout",
        signature: "TIMEOUT: device timeout",
        testId: "tests/test_ccl.py::test_all_gather",
      }
    : {}),
});

describe("failure analysis over the CI history (the tracking issue)", () => {
  const history = [
    record(11, [job("ccl (N300)", 1, "failure", "fp-hang"), job("build", 2, "success")]),
    record(12, [job("ccl (N300)", 3, "success")], ["ccl (N300)"], 2),
    record(13, [job("ccl (N300)", 4, "failure", "fp-hang")]),
    record(14, [job("ccl (N300)", 5, "failure", "fp-hang"), job("lint", 6, "failure", "fp-lint")]),
    record(15, [{ ...job("ccl (N300)", 7, "failure", "fp-hang"), infra: true }]),
  ];

  it("counts every recorded execution: rate, first and last seen by run number, SKUs, tests", () => {
    const a = analyzeExecutions(historyExecutions(history));
    // ccl ran in runs 11, 12 (twice: the cleared attempt 1 and the passing attempt 2), 13 and 14;
    // the infrastructure failure of run 15 does not count.
    expect(a.fingerprints[0]).toMatchObject({
      fingerprint: "fp-hang",
      failures: 3,
      executions: 5,
      rate: 0.6,
      firstSeen: "run #11",
      lastSeen: "run #14",
      skus: [{ name: "N300", count: 3 }],
      tests: [{ name: "tests/test_ccl.py::test_all_gather", count: 3 }],
    });
    expect(a.fingerprints[1]).toMatchObject({ fingerprint: "fp-lint", failures: 1, executions: 1, rate: 1 });
    expect(a.runs).toBe(4);
  });

  it("the tracking issue shows the per-fingerprint table", () => {
    const { body } = renderTrackingIssue({
      workflowName: "nightly",
      branch: "main",
      streak: {
        fingerprint: "fp-hang",
        jobName: "ccl (N300)",
        runs: history.slice(2, 4).reverse(),
        count: 2,
        startRunId: 9013,
        nondeterministic: true,
        flakinessEvidence: ["passed on retry in run #12"],
      },
      signature: "TIMEOUT: device timeout",
      errorClass: "device-timeout",
      labels: ["N300"],
      threshold: 2,
      history,
    });
    expect(body).toContain("Failure analysis across the 5 recorded runs of this workflow on `main`");
    expect(body).toContain("| fingerprint | error | failure rate | first seen | last seen |");
    expect(body).toContain(
      "| `fp-hang` | device-timeout | ██████░░░░ 60% (3/5 of ccl (N300)) | run #11 | run #14 | unknown ×3 | N300 ×3 |",
    );
  });
});

describe("pure helpers", () => {
  it("reads SKUs from runner labels by word, and draws bars", () => {
    expect(skusOf(["N150", "in-service"])).toEqual(["N150"]);
    expect(skusOf(["config-t3000", "arch-wormhole_b0"])).toEqual(["T3K"]);
    expect(skusOf(["tt-ubuntu-2204-p150b-viommu"])).toEqual(["P150B"]);
    expect(skusOf(["ubuntu-latest", "n150x"])).toEqual([]);
    expect(markdownBar(0)).toBe("░░░░░░░░░░");
    expect(markdownBar(0.34)).toBe("███░░░░░░░");
    expect(markdownBar(1.2)).toBe("██████████");
  });
});
