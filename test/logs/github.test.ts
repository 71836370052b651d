import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  fetchFailures,
  fetchJobLogs,
  fetchRunFailures,
  GitHubLogsError,
  groupByFingerprint,
  parseActionsUrl,
  renderGroups,
} from "../../src/logs/index.js";

const API = "https://api.github.com";
const BLOB = "https://productionresultssa1.blob.core.windows.net";
const TOKEN = `ghs_${"T0k3nValue".repeat(4)}`;
const access = { token: TOKEN };
const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../fixtures/logs", name), "utf8");

function job(id: number, over: Record<string, unknown> = {}) {
  return {
    id,
    run_id: 900,
    run_attempt: 2,
    name: `job-${id}`,
    labels: ["N150", "in-service"],
    status: "completed",
    conclusion: "success",
    runner_name: `tt-runner-${id}`,
    html_url: `https://github.com/tt/metal/actions/runs/900/job/${id}`,
    head_sha: "abc123",
    steps: [
      { name: "Set up job", number: 1, conclusion: "success" },
      { name: "Run tests", number: 2, conclusion: over.conclusion === "success" ? "success" : "failure" },
    ],
    ...over,
  };
}

/** The API answers the log request with a redirect to a signed blob URL on another host. */
function serveLog(
  api: nock.Scope,
  jobId: number,
  body: string | (() => Readable),
  blobPath = `/logs/${jobId}.txt`,
) {
  api
    .get(`/repos/tt/metal/actions/jobs/${jobId}/logs`)
    .matchHeader("authorization", `Bearer ${TOKEN}`)
    .reply(302, "", { Location: `${BLOB}${blobPath}?sv=2021&sig=SIGNATURE-${jobId}` });
  // The token must not follow the redirect to the blob host.
  nock(BLOB, { badheaders: ["authorization"] })
    .get(blobPath)
    .query({ sv: "2021", sig: `SIGNATURE-${jobId}` })
    .reply(200, typeof body === "string" ? body : body);
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe("fetching logs from the Actions API", () => {
  it("fetches a job: metadata, annotations and the log through the blob redirect", async () => {
    const api = nock(API)
      .get("/repos/tt/metal/actions/jobs/11")
      .matchHeader("authorization", `Bearer ${TOKEN}`)
      .reply(200, job(11, { conclusion: "failure" }))
      .get("/repos/tt/metal/check-runs/11/annotations")
      .query({ per_page: "50" })
      .reply(200, [
        {
          path: ".github",
          start_line: 1,
          annotation_level: "failure",
          message: "Process completed with exit code 1.",
          title: "",
        },
      ]);
    serveLog(api, 11, fixture("pytest-device-timeout-a.log"));

    const [f] = await fetchFailures(
      parseActionsUrl("https://github.com/tt/metal/actions/runs/900/job/11"),
      access,
    );
    expect(f!.job).toMatchObject({
      name: "job-11",
      runAttempt: 2,
      labels: ["N150", "in-service"],
      failedSteps: ["Run tests"],
    });
    expect(f!.annotations).toEqual([
      {
        level: "failure",
        message: "Process completed with exit code 1.",
        path: ".github",
        line: 1,
        title: "",
      },
    ]);
    expect(f!.triage.errorClass).toBe("device-timeout");
    expect(f!.triage.failingTests).toEqual([
      "tests/ttnn/unit_tests/test_multi_device.py::test_all_gather[8-bfloat16]",
    ]);
  });

  it("streams a large log from the blob host chunk by chunk", async () => {
    const api = nock(API)
      .get("/repos/tt/metal/actions/jobs/12")
      .reply(200, job(12, { conclusion: "failure" }));
    api
      .get("/repos/tt/metal/check-runs/12/annotations")
      .query(true)
      .reply(403, { message: "Resource not accessible" });
    let served = 0;
    serveLog(api, 12, () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < 2000; i++) {
            const chunk = `2024-05-01T12:00:00.0000000Z tests/a.py::test_${i} PASSED\n`.repeat(50);
            served += chunk.length;
            yield chunk;
          }
          yield "2024-05-01T12:00:01.0000000Z Fatal Python error: Segmentation fault\n";
        })(),
      ),
    );
    const f = await fetchJobLogs(
      { host: "github.com", apiBase: API, owner: "tt", repo: "metal" },
      12,
      access,
    );
    expect(served).toBeGreaterThan(4_000_000);
    expect(f.triage.stats.lines).toBe(100_001);
    expect(f.triage.errorClass).toBe("segfault");
    // Annotations need checks:read; without it the log still counts.
    expect(f.annotations).toEqual([]);
  });

  it("uses the /api/v3 base on GitHub Enterprise hosts", async () => {
    const ghe = nock("https://github.example.com/api/v3")
      .get("/repos/tt/metal/actions/jobs/5")
      .reply(200, job(5, { conclusion: "failure" }))
      .get("/repos/tt/metal/check-runs/5/annotations")
      .query(true)
      .reply(200, [])
      .get("/repos/tt/metal/actions/jobs/5/logs")
      .reply(302, "", { Location: "https://github.example.com/storage/logs/5?token=blob" });
    nock("https://github.example.com", { badheaders: ["authorization"] })
      .get("/storage/logs/5")
      .query({ token: "blob" })
      .reply(200, fixture("segfault.log"));
    const [f] = await fetchFailures(parseActionsUrl("https://github.example.com/tt/metal/runs/5"), access);
    expect(ghe.isDone()).toBe(true);
    expect(f!.triage.failingTests).toEqual(["T3000MultiDeviceFixture.ReduceScatterRing"]);
  });

  it("takes every failed job of the run's final attempt, across pages, and groups them", async () => {
    const page1 = [
      job(1, { conclusion: "failure", runner_name: "vm-a" }),
      ...Array.from({ length: 99 }, (_, i) => job(100 + i)),
    ];
    const page2 = [
      job(2, { conclusion: "timed_out", runner_name: "vm-b" }),
      job(3, { conclusion: "cancelled" }),
      job(4, { conclusion: "failure", name: "lint" }),
    ];
    const api = nock(API)
      .get("/repos/tt/metal/actions/runs/900")
      .reply(200, { id: 900, run_attempt: 2 })
      .get("/repos/tt/metal/actions/runs/900/attempts/2/jobs")
      .query({ per_page: "100", page: "1" })
      .reply(200, { total_count: 103, jobs: page1 })
      .get("/repos/tt/metal/actions/runs/900/attempts/2/jobs")
      .query({ per_page: "100", page: "2" })
      .reply(200, { total_count: 103, jobs: page2 });
    for (const id of [1, 2, 4])
      api.get(`/repos/tt/metal/check-runs/${id}/annotations`).query(true).reply(200, []);
    serveLog(api, 1, fixture("pytest-device-timeout-a.log"));
    serveLog(api, 2, fixture("pytest-device-timeout-b.log"));
    serveLog(api, 4, fixture("pytest-assertion.log"));

    const run = await fetchRunFailures(
      { host: "github.com", apiBase: API, owner: "tt", repo: "metal", runId: 900 },
      access,
    );
    expect(run.attempt).toBe(2);
    expect(run.failures.map((f) => f.label)).toEqual(["job-1", "job-2", "lint"]);
    expect(run.otherJobs).toEqual({ success: 99, cancelled: 1 });

    const groups = groupByFingerprint(run.failures);
    expect(groups.map((g) => g.members)).toEqual([["job-1", "job-2"], ["lint"]]);
    expect(groups[0]!.differences).toContain("runner: vm-a (1), vm-b (1)");
    expect(groups[0]!.same).toContain("runner labels: N150, in-service");
    expect(renderGroups(groups)).toContain("2 distinct failures across 3 logs");
  });

  it("reads the attempt a link names instead of the latest", async () => {
    const api = nock(API)
      .get("/repos/tt/metal/actions/runs/900/attempts/1/jobs")
      .query(true)
      .reply(200, { total_count: 1, jobs: [job(7, { conclusion: "success", run_attempt: 1 })] });
    const run = await fetchRunFailures(
      parseActionsUrl("https://github.com/tt/metal/actions/runs/900/attempts/1") as Parameters<
        typeof fetchRunFailures
      >[0],
      access,
    );
    expect(api.isDone()).toBe(true);
    expect(run).toEqual({ runId: 900, attempt: 1, otherJobs: { success: 1 }, failures: [] });
  });

  it.each([
    [404, /not found \(404\)/],
    [410, /expired/],
    [403, /actions: read/],
  ])("explains a %i on the log without leaking the token", async (status, why) => {
    nock(API)
      .get("/repos/tt/metal/actions/jobs/9")
      .reply(200, job(9, { conclusion: "failure" }))
      .get("/repos/tt/metal/check-runs/9/annotations")
      .query(true)
      .reply(200, [])
      .get("/repos/tt/metal/actions/jobs/9/logs")
      .reply(status, { message: `bad ${TOKEN}` });
    const err = await fetchJobLogs(
      { host: "github.com", apiBase: API, owner: "tt", repo: "metal" },
      9,
      access,
    ).catch((e) => e);
    expect(err).toBeInstanceOf(GitHubLogsError);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(why);
    expect(err.message).not.toContain(TOKEN);
  });

  it("rejects an API answer that lacks what the triage relies on", async () => {
    nock(API).get("/repos/tt/metal/actions/jobs/9").reply(200, { id: 9, name: "x" });
    await expect(
      fetchJobLogs({ host: "github.com", apiBase: API, owner: "tt", repo: "metal" }, 9, access),
    ).rejects.toThrow(/job 9: unexpected answer from GitHub/);
  });
});
