import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import type { Settings } from "../../src/config/env.js";
import { createJobRunner, type JobRunnerOptions } from "../../src/pipeline/job-runner.js";
import type { JobRunner } from "../../src/worker/types.js";
import type { FakeAnthropic } from "../helpers/fake-anthropic.js";
import type { WorkerTestBed } from "../worker/helpers/harness.js";

/** The production job runner of a test worker, talking to a fake Messages API. */
export function realJobRunner(
  bed: WorkerTestBed,
  fake: FakeAnthropic,
  extra: { settings?: Partial<Settings>; options?: JobRunnerOptions } = {},
): JobRunner {
  const settings = {
    AUTOFIX_WORK_DIR: bed.workDir,
    AUTOFIX_MODEL: "claude-sonnet-5",
    ...extra.settings,
  } as Settings;
  const url = fake.url;
  return createJobRunner(settings, bed.logger, {
    client: () => new Anthropic({ apiKey: "test", baseURL: url, maxRetries: 0 }),
    reportDir: mkdtempSync(join(tmpdir(), "autofix-pipeline-reports-")),
    ...extra.options,
  });
}
