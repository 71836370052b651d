/**
 * The agent's tools: zod input schemas (published to the model as JSON schema) and handlers,
 * one file per tool or small group, bound by `defineTool` (define.ts) and listed per phase in
 * registry.ts.
 */
export type { ToolContext, ToolDef, ToolOutcome } from "./define.js";
export { fixFinishInput, reproduceFinishInput } from "./finish.js";
export { executeTool, toApiTools, toolsForPhase } from "./registry.js";
export { formatCommandResult } from "./run-command.js";
export { replaceUnique } from "./write.js";
