/** Keeps the first and the last bytes of a stream of output, and counts what it cut. */
export class HeadTail {
  #head: Buffer[] = [];
  #headLen = 0;
  #tail: Buffer[] = [];
  #tailLen = 0;
  #total = 0;

  constructor(
    readonly headBytes = 8 * 1024,
    readonly tailBytes = 16 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    let buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.#total += buf.length;
    if (this.#headLen < this.headBytes) {
      const take = Math.min(this.headBytes - this.#headLen, buf.length);
      this.#head.push(buf.subarray(0, take));
      this.#headLen += take;
      buf = buf.subarray(take);
    }
    if (buf.length === 0) return;
    this.#tail.push(buf);
    this.#tailLen += buf.length;
    // Drop whole chunks from the front while the rest still covers the tail.
    while (this.#tail.length > 1 && this.#tailLen - this.#tail[0]!.length >= this.tailBytes) {
      this.#tailLen -= this.#tail.shift()!.length;
    }
  }

  /** Bytes seen in total. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Bytes left out of `text()`. */
  get cutBytes(): number {
    return Math.max(0, this.#total - this.headBytes - this.tailBytes);
  }

  text(): string {
    const head = Buffer.concat(this.#head).toString("utf8");
    let tail = Buffer.concat(this.#tail);
    if (tail.length > this.tailBytes) tail = tail.subarray(tail.length - this.tailBytes);
    const cut = this.cutBytes;
    if (cut === 0) return head + tail.toString("utf8");
    return `${head}\n[... ${cut} bytes of output cut; first ${this.headBytes} and last ${this.tailBytes} bytes kept ...]\n${tail.toString("utf8")}`;
  }
}
