import { describe, expect, it } from "vitest";
import { ActionsUrlError, describeRef, parseActionsUrl } from "../../src/logs/index.js";

const GH = { host: "github.com", apiBase: "https://api.github.com", owner: "tenstorrent", repo: "tt-metal" };

describe("parseActionsUrl", () => {
  it.each([
    [
      "https://github.com/tenstorrent/tt-metal/actions/runs/9876543210",
      { ...GH, kind: "run", runId: 9876543210 },
    ],
    [
      "https://github.com/tenstorrent/tt-metal/actions/runs/98/attempts/3",
      { ...GH, kind: "run", runId: 98, attempt: 3 },
    ],
    [
      "https://github.com/tenstorrent/tt-metal/actions/runs/98/job/27000000001",
      { ...GH, kind: "job", runId: 98, jobId: 27000000001 },
    ],
    [
      "https://github.com/tenstorrent/tt-metal/actions/runs/98/job/270?pr=12345#step:6:1203",
      { ...GH, kind: "job", runId: 98, jobId: 270 },
    ],
    ["https://github.com/tenstorrent/tt-metal/runs/270", { ...GH, kind: "job", jobId: 270 }],
    [
      "https://github.com/tenstorrent/tt-metal/pull/12345/checks?check_run_id=270",
      { ...GH, kind: "job", jobId: 270 },
    ],
    ["  https://www.github.com/tenstorrent/tt-metal/actions/runs/98/  ", { ...GH, kind: "run", runId: 98 }],
    [
      "https://github.example.com/tenstorrent/tt-metal/actions/runs/98/job/270",
      {
        ...GH,
        host: "github.example.com",
        apiBase: "https://github.example.com/api/v3",
        kind: "job",
        runId: 98,
        jobId: 270,
      },
    ],
    [
      "https://ghe.local:8443/o/r/runs/5",
      {
        host: "ghe.local:8443",
        apiBase: "https://ghe.local:8443/api/v3",
        owner: "o",
        repo: "r",
        kind: "job",
        jobId: 5,
      },
    ],
  ])("%s", (url, want) => {
    expect(parseActionsUrl(url)).toEqual(want);
  });

  it.each([
    ["not a url", /not a URL/],
    ["https://github.com/tenstorrent/tt-metal", /expected \/OWNER\/REPO\/actions\/runs/],
    ["https://github.com/tenstorrent/tt-metal/issues/5", /"\/issues" is not an Actions page/],
    ["https://github.com/tenstorrent/tt-metal/actions/runs/abc", /the run id must be a number/],
    ["https://github.com/tenstorrent/tt-metal/actions/runs/98/artifacts/1", /unexpected "\/artifacts\/1"/],
    ["https://github.com/tenstorrent/tt-metal/pull/5/checks", /needs|only with \?check_run_id/],
    ["https://user:ghp_secretsecretsecret@github.com/o/r/runs/5", /credentials in the URL/],
    ["ftp://github.com/o/r/runs/5", /must start with https/],
  ])("rejects %s with a clear message listing the accepted forms", (url, why) => {
    let err: unknown;
    try {
      parseActionsUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ActionsUrlError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toContain("/actions/runs/RUN_ID/job/JOB_ID");
    expect((err as Error).message).not.toContain("ghp_secret");
  });

  it("describes a ref without secrets, with the host for GHE", () => {
    expect(describeRef(parseActionsUrl("https://github.com/o/r/actions/runs/9/attempts/2"))).toBe(
      "o/r run 9 attempt 2",
    );
    expect(describeRef(parseActionsUrl("https://ghe.corp/o/r/runs/7"))).toBe("ghe.corp/o/r job 7");
  });
});
