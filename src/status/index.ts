export { findStatusComment, type IssueRef, targetKey, upsertStatusComment } from "./comment.js";
export { baseView, triggerText } from "./job-view.js";
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
