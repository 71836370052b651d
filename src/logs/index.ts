/**
 * CI log intake and triage: from an Actions URL (or a pasted log) to the few lines that
 * matter. Used by `autofix logs`, by the agent's phase 0 and by the repeated-failure detector.
 */
export { ERROR_CLASSES, type ErrorClass, FAMILIES, type Family } from "./classify.js";
export { fingerprintOf, normalizeSignature } from "./fingerprint.js";
export {
  type Annotation,
  type FetchLike,
  fetchAnnotations,
  fetchFailures,
  fetchJob,
  fetchJobLogs,
  fetchRunFailures,
  GitHubLogsError,
  type JobFailure,
  type JobInfo,
  type LogsAccess,
  openJobLog,
  type ResponseLike,
  type RunFailures,
} from "./github.js";
export { type FailureGroup, groupByFingerprint } from "./group.js";
export { renderFailure, renderGroups } from "./render.js";
export { cleanLogLine, type LogSource, TriageEngine, triageStream, triageText } from "./triage.js";
export { type Triage, type TriageOptions, triageSchema } from "./types.js";
export {
  type ActionsRef,
  ActionsUrlError,
  apiBaseFor,
  describeRef,
  parseActionsUrl,
  type RepoRef,
} from "./url.js";
