/**
 * Keeps the last `limit` bytes of a stream. A failing tool explains itself at the end of its output
 * (the traceback, the last error line), so when output must be bounded the tail is what to keep.
 */
export class TailBuffer {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #kept = 0;
  #total = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`output limit must be a non-negative integer, got ${limit}`);
    }
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#total += chunk.length;
    if (this.#limit === 0 || chunk.length === 0) return;
    if (chunk.length >= this.#limit) {
      this.#chunks = [chunk.subarray(chunk.length - this.#limit)];
      this.#kept = this.#limit;
      return;
    }
    this.#chunks.push(chunk);
    this.#kept += chunk.length;
    while (this.#kept > this.#limit) {
      const first = this.#chunks[0] as Buffer;
      const excess = this.#kept - this.#limit;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#kept -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#kept -= excess;
      }
    }
  }

  /** Bytes seen in total, kept or not. */
  get totalBytes(): number {
    return this.#total;
  }

  get truncated(): boolean {
    return this.#total > this.#kept;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks, this.#kept);
  }

  /** UTF-8 text of the kept bytes; a character cut in half by truncation is dropped, not mangled. */
  toString(): string {
    let bytes = this.toBuffer();
    if (this.truncated) {
      let skip = 0;
      while (skip < 3 && skip < bytes.length && ((bytes[skip] as number) & 0xc0) === 0x80) skip++;
      bytes = bytes.subarray(skip);
    }
    return bytes.toString("utf8");
  }
}
