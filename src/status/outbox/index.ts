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
