/**
 * The phased agent: reproduce, fix, prove. See README "The agent".
 *
 *   const result = await runFixAgent({ workspace, baseSha, branch, request, config,
 *     failureContext, client: new Anthropic(), signal, onProgress });
 */
export { COMMIT_EMAIL } from "./git.js";
export { AgentSetupError, type RunFixAgentOptions, runFixAgent } from "./harness.js";
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
