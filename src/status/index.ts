export { endSteps, settleSteps, startStep } from "./checklist.js";
export { findStatusComment, type IssueRef, targetKey, upsertStatusComment } from "./comment.js";
export { GitHubStatusSink, githubStatusSinks, type OctokitSource } from "./github.js";
export { baseView, initialView, triggerText } from "./job-view.js";
export {
  defaultSteps,
  FINAL_STATES,
  isFinal,
  JOB_STATES,
  type JobState,
  type StatusStep,
  type StatusView,
  type StepState,
} from "./model.js";
export { formatDuration, isAutofixComment, markerTarget, renderStatus, statusMarker } from "./render.js";
export {
  STATUS_THROTTLE_MS,
  StatusReporter,
  type StatusReporterOptions,
  throttleDecision,
} from "./reporter.js";
export {
  issueRefOf,
  type StatusSink,
  type StatusSinkFactory,
  type StatusTarget,
  statusTargetOf,
} from "./sink.js";
