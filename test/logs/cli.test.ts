import { join } from "node:path";
import { Readable } from "node:stream";
import nock from "nock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { createLogsCommand } from "../../src/cli/commands/logs.js";
import { runCli } from "../../src/cli/run.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/logs");
const TOKEN = `ghp_${"cliToken42".repeat(4)}`;

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env, cwd: FIXTURES };
  return { cli, out: () => out.join("\n"), err: () => err.join("\n") };
}

beforeAll(() => nock.disableNetConnect());
afterAll(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe("autofix logs", () => {
  it("is registered as a subcommand", async () => {
    const r = io();
    expect(await runCli(["logs"], r.cli)).toBe(2);
    expect(r.err()).toContain("usage: autofix logs");
  });

  it("triages local files for a person and groups them by fingerprint", async () => {
    const r = io();
    const code = await createLogsCommand().run(
      ["pytest-device-timeout-a.log", "pytest-device-timeout-b.log", "gtest-failure.log"],
      r.cli,
    );
    expect(code).toBe(0);
    const out = r.out();
    expect(out).toContain("class:       device-timeout (tt-device-timeout)");
    expect(out).toContain("- DeviceFixture.TestShardedBufferReadWrite");
    expect(out).toContain("TIMEOUT: device timeout, potential hang detected");
    expect(out).toContain("2 distinct failures across 3 logs");
    expect(out).toMatch(
      /-- [0-9a-f]{12} device-timeout in 2 logs: pytest-device-timeout-a.log, pytest-device-timeout-b.log/,
    );
  });

  it("prints failing tests, class, fingerprint and excerpt as JSON, also from stdin", async () => {
    const r = io();
    const stdin = () =>
      Readable.from(["2024-05-01T12:00:00.0000000Z FAILED tests/x.py::test_y - Assert", "ionError: no\n"]);
    expect(await createLogsCommand({ stdin }).run(["--json", "-", "oom.log"], r.cli)).toBe(0);
    const json = JSON.parse(r.out());
    expect(json.results).toHaveLength(2);
    expect(json.results[0]).toMatchObject({
      source: "stdin",
      failingTests: ["tests/x.py::test_y"],
      errorClass: "assertion-failure",
      fingerprint: expect.stringMatching(/^[0-9a-f]{12}$/),
    });
    expect(json.results[0].excerpt).toContain("FAILED tests/x.py::test_y - AssertionError: no");
    expect(json.results[1]).toMatchObject({ source: "oom.log", errorClass: "resource-exhaustion" });
    expect(json.groups).toHaveLength(2);
  });

  it("says clearly that a URL needs GITHUB_TOKEN or GH_TOKEN", async () => {
    const r = io({});
    expect(await createLogsCommand().run(["https://github.com/o/r/actions/runs/1"], r.cli)).toBe(2);
    expect(r.err()).toMatch(/needs a token: set GITHUB_TOKEN or GH_TOKEN/);
  });

  it("rejects a link that is not an Actions page before fetching anything", async () => {
    const r = io({ GH_TOKEN: TOKEN });
    expect(await createLogsCommand().run(["https://github.com/o/r/issues/3"], r.cli)).toBe(2);
    expect(r.err()).toContain("not a GitHub Actions link");
  });

  it("fetches a job URL with the token from the environment and never prints the token", async () => {
    nock("https://api.github.com")
      .get("/repos/o/r/actions/jobs/77")
      .matchHeader("authorization", `Bearer ${TOKEN}`)
      .reply(200, {
        id: 77,
        run_id: 5,
        run_attempt: 1,
        name: "t3k tests",
        labels: ["config-t3000"],
        status: "completed",
        conclusion: "failure",
        runner_name: "t3k-07",
        html_url: "https://github.com/o/r/actions/runs/5/job/77",
      })
      .get("/repos/o/r/check-runs/77/annotations")
      .query(true)
      .reply(200, [])
      .get("/repos/o/r/actions/jobs/77/logs")
      .reply(302, "", { Location: "https://blob.example.net/77?sig=x" });
    nock("https://blob.example.net")
      .get("/77")
      .query(true)
      .reply(
        200,
        `2024-05-01T12:00:00.0000000Z echo ${TOKEN}\n2024-05-01T12:00:01.0000000Z Segmentation fault ${TOKEN}\n`,
      );
    const r = io({ GITHUB_TOKEN: TOKEN });
    expect(await createLogsCommand().run(["https://github.com/o/r/actions/runs/5/job/77"], r.cli)).toBe(0);
    expect(r.out()).toContain("== t3k tests (https://github.com/o/r/actions/runs/5/job/77)");
    expect(r.out()).toContain("runner t3k-07");
    expect(r.out()).toContain("class:       segfault");
    expect(r.out()).not.toContain(TOKEN);
  });

  it("reports a missing file and still triages the others", async () => {
    const r = io();
    expect(await createLogsCommand().run(["nope.log", "segfault.log"], r.cli)).toBe(1);
    expect(r.err()).toContain("nope.log: no such file");
    expect(r.out()).toContain("class:       segfault");
  });
});
