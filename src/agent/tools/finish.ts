import { z } from "zod";
import { defineTool, relPath, type ToolOutcome } from "./define.js";

/**
 * `finish`, one schema per phase. The tool only hands the validated input to the phase
 * (`ToolOutcome.finish`); the phase's gate decides whether it is accepted.
 */

export const reproduceFinishInput = z.strictObject({
  test_dir: relPath.describe("The test folder holding tests/, README.md and run_test.sh"),
  command: z.string().min(1).describe("The command that runs the test from the repository root"),
  failure_mode: z.string().min(1).max(2000).describe("Short description of how the failure shows"),
});

export const fixFinishInput = z.strictObject({
  summary: z.string().min(1).max(4000),
  root_cause: z.string().min(1).max(8000),
  changes: z.string().min(1).max(8000).describe("What was changed, file by file"),
  performance: z.string().min(1).max(4000).describe("Performance impact, measured where possible"),
});

const handOver = async (input: unknown): Promise<ToolOutcome> => ({
  content: "finish received",
  isError: false,
  finish: input,
});

export const reproduceFinishTool = defineTool({
  name: "finish",
  description:
    "End phase 1: give the test folder, the command that runs it and the failure mode. The harness then runs the command on the unchanged code.",
  schema: reproduceFinishInput,
  run: handOver,
});

export const fixFinishTool = defineTool({
  name: "finish",
  description:
    "End phase 2: describe the fix. The harness then runs the frozen reproduction several times in a row and checks the test is unchanged.",
  schema: fixFinishInput,
  run: handOver,
});
