/**
 * The phased agent: reproduce, fix, prove. See docs/agent.md. The public surface of
 * src/agent: the rest of the folder is its implementation.
 *
 *   const result = await runFixAgent({ executor, baseSha, branch, request, config,
 *     failureContext, client: new Anthropic(), signal, onProgress });
 *
 * `executor` is the job's JobExecutor (src/sandbox/executor.ts) around the prepared checkout:
 * every command of the run (tools, gates, the build, the harness's git) goes through it.
 */
export { COMMIT_EMAIL } from "./git.js";
export { AgentSetupError, DRAINED, type RunFixAgentOptions, runFixAgent } from "./harness.js";
export { deriveReproCommand, overallStatus, slugOfBranch } from "./outcome.js";
export { estimateCost, PRICE_TABLE, priceFor } from "./spend.js";
export {
  AGENT_STATUSES,
  type AgentResult,
  type AgentStatus,
  type AgentUsage,
  agentResultSchema,
  type FixSummary,
  type GateResult,
  type GateRun,
  type PhaseName,
  type PhaseOutcome,
  type PhaseStatus,
  type ProgressEvent,
  type ProgressListener,
  type Reproduction,
  type TranscriptEntry,
} from "./types.js";
