/**
 * The last `limit` bytes of a stream, so that a command's output is kept bounded and its end
 * (where errors usually are) is what survives.
 */
export class TailBuffer {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private seen = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.seen += chunk.length;
    if (this.limit <= 0) return;
    this.chunks.push(chunk);
    this.kept += chunk.length;
    // Drop whole chunks that lie entirely before the last `limit` bytes.
    while (this.chunks.length > 1 && this.kept - this.chunks[0]!.length >= this.limit)
      this.kept -= this.chunks.shift()!.length;
  }

  /** Bytes written in all, kept or not. */
  get totalBytes(): number {
    return this.seen;
  }

  /** Whether bytes were dropped. */
  get truncated(): boolean {
    return this.seen > this.limit;
  }

  /** The kept bytes as UTF-8 (a character cut at the start shows as U+FFFD). */
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}
