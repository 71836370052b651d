import { afterEach, describe, expect, it } from "vitest";
import { DRAINED } from "../../src/agent/harness.js";
import { runFixAgent } from "../../src/agent/index.js";
import { createHostExecutor } from "../../src/sandbox/host.js";
import { ADD_BUGGY, addBugFix, addBugSession } from "../helpers/add-bug.js";
import { type FakeAnthropic, startFakeAnthropic } from "../helpers/fake-anthropic.js";
import { client, config, makeRepo, type TestRepo } from "./repo.js";

/** A worker that starts shutting down lets the running job finish its phase, then stops it. */

let fake: FakeAnthropic | undefined;
let repo: TestRepo | undefined;
afterEach(async () => {
  await fake?.close();
  await repo?.cleanup();
  fake = repo = undefined;
});

describe("drain", () => {
  it("a shutdown during the reproduce phase stops the run before the fix phase, without a model call for it", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    fake = await startFakeAnthropic(addBugSession("autofix-tests/add"));
    const drain = new AbortController();
    const result = await runFixAgent({
      executor: createHostExecutor({ workspace: repo.dir, env: {}, cards: [], jobId: "drain" }),
      baseSha: repo.baseSha,
      branch: "autofix/add",
      request: { deterministic: true, prompt: "add.sh subtracts", rawLogs: "expected 5, got -1" },
      config: config(),
      failureContext: "expected 5, got -1",
      client: client(fake),
      drain: drain.signal,
      onProgress: (e) => {
        if (e.type === "phase_started" && e.phase === "reproduce") drain.abort();
      },
    });
    expect(result.status).toBe("cancelled");
    expect(result.reason).toBe(`${DRAINED}: stopped before the fix phase`);
    expect(result.phases.map((p) => `${p.phase}:${p.status}`)).toEqual(["reproduce:passed"]);
    // The reproduction is kept (proven on the base), and the fix phase never asked the model.
    expect(result.reproduction?.path).toBe("autofix-tests/add");
    expect(fake.remaining()).toBe(addBugFix("autofix-tests/add").length);
  });
});
