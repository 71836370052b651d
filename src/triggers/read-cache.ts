/**
 * A small cache of GitHub reads for the webhook: one read per key at a time however many
 * deliveries ask at once (the others wait for it), kept for `ttlMs` when it succeeded; a failure
 * is never kept. A burst of commands on one repository then costs one config read and one
 * branch lookup instead of one each, which keeps the burst inside the webhook's read budget.
 */
export class ReadCache<T> {
  #entries = new Map<string, { value: T; expires: number }>();
  #inFlight = new Map<string, Promise<T>>();

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly max = 10_000,
  ) {}

  /** The kept value for `key`, or the one `load` gives (shared with concurrent callers). */
  async get(key: string, load: () => Promise<T>): Promise<T> {
    const e = this.#entries.get(key);
    if (e && e.expires > this.now()) return e.value;
    if (e) this.#entries.delete(key);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const p = load().then(
      (value) => {
        this.#inFlight.delete(key);
        if (this.#entries.size >= this.max) this.#entries.clear();
        this.#entries.set(key, { value, expires: this.now() + this.ttlMs });
        return value;
      },
      (err: unknown) => {
        this.#inFlight.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, p);
    return p;
  }

  /** Forget a key (the next get reads again). */
  delete(key: string): void {
    this.#entries.delete(key);
  }
}
