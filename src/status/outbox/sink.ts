import type { StatusView } from "../model.js";
import type { StatusSink, StatusSinkFactory, StatusTarget } from "../sink.js";
import { locationOf } from "./location.js";
import type { Outbox } from "./outbox.js";

/**
 * The status sink over the outbox: write() resolves once the view is durably in Redis (or a
 * newer view of the location already is); a drainer delivers it. The web process and every
 * worker write a target's views here, so one lane, and one writer, serves each comment.
 */
export class OutboxStatusSink implements StatusSink {
  constructor(
    private readonly outbox: Outbox,
    readonly target: StatusTarget,
  ) {}

  async write(view: StatusView): Promise<void> {
    await this.outbox.status(locationOf(this.target), this.target.installationId, view, {
      jobId: view.jobId,
      pool: view.pool,
    });
  }
}

/** A sink factory over the outbox: one OutboxStatusSink per target. */
export function outboxStatusSinks(outbox: Outbox): StatusSinkFactory {
  return (target) => new OutboxStatusSink(outbox, target);
}
