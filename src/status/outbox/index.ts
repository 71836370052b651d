export {
  CONTENT_INTERVAL_MS,
  ITEM_MAX_AGE_MS,
  OutboxDrainer,
  type OutboxDrainerOptions,
  WRITE_INTERVAL_MS,
} from "./drainer.js";
export {
  backoffMs,
  classifyFailure,
  DEFAULT_PAUSE_MS,
  drainerOctokits,
  type FailureDecision,
  findStatusAt,
  type InstallationAccess,
  writeStatusComment,
} from "./github-writes.js";
export { type CommentLocation, locationKey, locationOf, parseLocation } from "./location.js";
export {
  type OpenEntry,
  Outbox,
  type OutboxDepth,
  PRIORITY,
  type ReactionContent,
  type StatusMeta,
  stateRank,
} from "./outbox.js";
export { OutboxStatusSink, outboxStatusSinks } from "./sink.js";
export {
  ENDED_GRACE_MS,
  type JobStateLookup,
  lostMessage,
  lostView,
  OutboxSweeper,
  queueJobState,
} from "./sweeper.js";
