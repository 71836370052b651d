import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { COMMIT_EMAIL } from "../../src/git/safe.js";
import { runPipeline } from "../../src/pipeline/run.js";
import { createHostExecutor } from "../../src/sandbox/host.js";
import { client, config, makeRepo, type TestRepo } from "../agent/repo.js";
import { ADD_BUGGY, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, startFakeAnthropic } from "../helpers/fake-anthropic.js";

/**
 * Phase 3 has a budget of its own (budgets.pr_minutes): a GitHub that takes the push but never
 * answers the PR creation ends the run with a proven, unpublished fix and says why, instead of
 * hanging the job until the worker's timeout.
 */

let repo: TestRepo | undefined;
let fake: FakeAnthropic | undefined;
let server: Server | undefined;
afterEach(async () => {
  await repo?.cleanup();
  await fake?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  repo = fake = server = undefined;
});

describe("the publish budget", () => {
  it("a PR creation that never answers ends the run partial with the budget named", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const bare = mkdtempSync(join(tmpdir(), "autofix-budget-remote-"));
    execFileSync("git", ["init", "-q", "--bare", bare]);
    let creates = 0;
    server = createServer((req, res) => {
      if (req.method === "GET" && req.url?.includes("/pulls")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("[]");
        return;
      }
      if (req.method === "POST" && req.url?.includes("/pulls")) {
        creates++;
        return; // never answers
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const testDir = "autofix-tests/add";
    fake = await startFakeAnthropic(addBugSession(testDir));
    const executor = createHostExecutor({ workspace: repo.dir, env: {}, cards: [], jobId: "budget" });
    const out = await runPipeline({
      runId: "budget",
      origin: "test",
      request: { deterministic: true, prompt: "add.sh subtracts", rawLogs: "expected 5, got -1" },
      executor,
      config: config({ budgets: { pr_minutes: 0.01 } }),
      baseSha: repo.baseSha,
      branch: "autofix/add",
      reportDir: mkdtempSync(join(tmpdir(), "autofix-budget-reports-")),
      publish: {
        octokit: new ProbotOctokit({
          auth: { token: "t" },
          baseUrl: api,
          retry: { enabled: false },
          throttle: { enabled: false },
        }) as ProbotOctokit,
        owner: "acme",
        repo: "widget",
        baseBranch: "main",
        remoteUrl: bare,
        pushFrom: repo.dir,
        helperPath: join(mkdtempSync(join(tmpdir(), "autofix-budget-helper-")), "helper"),
        token: async () => "ghs_test",
        appEmails: [COMMIT_EMAIL],
      },
      client: client(fake),
      model: "claude-sonnet-5",
    });
    await executor.dispose();
    expect(out.result?.status).toBe("succeeded");
    // Whether the budget ran out during the push or while waiting for the PR, the run says so.
    expect(creates).toBeLessThanOrEqual(1);
    expect(out.pullRequest).toBeNull();
    expect(out.status).toBe("partial");
    expect(out.problem).toContain("publishing ran past its 0.01 min budget (budgets.pr_minutes)");
    expect(out.report).toContain("budgets.pr_minutes");
  });
});
