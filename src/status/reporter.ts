import type { Logger } from "../shared/logger.js";
import type { JobState, StatusView } from "./model.js";
import type { StatusSink } from "./sink.js";

/** Default minimum time between two edits of the status comment, except state changes. */
export const STATUS_THROTTLE_MS = 5_000;

/**
 * Decide whether an update is written now or later. Pure: state changes and the first edit
 * go out at once; other updates at most once per `minIntervalMs`.
 */
export function throttleDecision(input: {
  now: number;
  lastEditAt: number | null;
  lastState: JobState | null;
  nextState: JobState;
  minIntervalMs: number;
}): { flush: true } | { flush: false; waitMs: number } {
  if (input.lastEditAt === null || input.lastState !== input.nextState) return { flush: true };
  const since = input.now - input.lastEditAt;
  if (since >= input.minIntervalMs) return { flush: true };
  return { flush: false, waitMs: input.minIntervalMs - since };
}

export interface StatusReporterOptions {
  /** Milliseconds now (the worker's clock; tests fix it). */
  now: () => number;
  logger?: Logger;
  minIntervalMs?: number;
}

/**
 * Keeps one job's status current through a sink: merges updates, throttles writes, serializes
 * them, and never lets a failed write break the job (it is logged).
 */
export class StatusReporter {
  #view: StatusView;
  #lastEditAt: number | null = null;
  #lastState: JobState | null = null;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #startedAt: number | null = null;
  #closed = false;

  constructor(
    readonly sink: StatusSink,
    view: StatusView,
    private readonly opts: StatusReporterOptions,
  ) {
    this.#view = view;
  }

  get view(): StatusView {
    return this.#view;
  }

  /** Start counting elapsed time (shown while running and in the final state). */
  startClock(): void {
    this.#startedAt = this.opts.now();
  }

  /** Merge an update; written now or within the throttle interval. */
  update(patch: Partial<StatusView>): void {
    if (this.#closed) return;
    this.#view = { ...this.#view, ...patch };
    const d = throttleDecision({
      now: this.opts.now(),
      lastEditAt: this.#lastEditAt,
      lastState: this.#lastState,
      nextState: this.#view.state,
      minIntervalMs: this.opts.minIntervalMs ?? STATUS_THROTTLE_MS,
    });
    if (d.flush) {
      void this.flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, d.waitMs);
      this.#timer.unref();
    }
  }

  /** Write the current view now (after any write in flight). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const run = async () => {
      const now = this.opts.now();
      const view: StatusView = {
        ...this.#view,
        ...(this.#startedAt !== null ? { elapsedMs: now - this.#startedAt } : {}),
        updatedAt: new Date(now),
      };
      this.#lastEditAt = now;
      this.#lastState = view.state;
      try {
        await this.sink.write(view);
      } catch (err) {
        this.opts.logger?.warn({ err, target: view.target }, "could not update the status comment");
      }
    };
    this.#chain = this.#chain.then(run, run);
    return this.#chain;
  }

  /** Write a last view and stop: later updates are ignored. */
  async finish(patch: Partial<StatusView>): Promise<void> {
    this.#view = { ...this.#view, ...patch };
    const p = this.flush();
    this.#closed = true;
    await p;
  }
}
