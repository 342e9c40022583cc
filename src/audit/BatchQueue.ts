import { randomUUID } from 'node:crypto';

/** One chunk of rows and the id it is written under, every time it is sent. */
interface Batch<T> {
  readonly id: string;
  readonly rows: readonly T[];
}

/**
 * Rows taken from a buffer, cut into chunks that each keep an id of their own until the store
 * confirms them. A chunk whose write failed is sent again as it was, under the same id, before
 * anything newer: the store skips an id it has written, so a write that committed after its
 * caller gave up on it counts once. Merging it back into the live buffer would lose that.
 */
export class BatchQueue<T> {
  private batches: Batch<T>[] = [];
  private rowCount = 0;
  /** Rows of the chunks at the front whose write failed: they wait for the next call. */
  private keptCount = 0;
  private alreadyWrittenCount = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly chunkSize: number,
    private readonly newId: () => string = randomUUID,
  ) {}

  /** Rows waiting in chunks (taken from the buffer, not confirmed yet). */
  get rows(): number {
    return this.rowCount;
  }

  /**
   * Rows kept from a failed write, waiting to be sent again (rows being written for the first
   * time are not among them).
   */
  get kept(): number {
    return this.keptCount;
  }

  /** Chunks waiting. */
  get size(): number {
    return this.batches.length;
  }

  /** Chunks sent again that the store had written already: a failure that was not one. */
  get alreadyWritten(): number {
    return this.alreadyWrittenCount;
  }

  /**
   * Sends the waiting chunks in order, then, if they all went, the rows `take` gives (cut into
   * new chunks). Stops at the first failure and throws it: that chunk and the ones after it
   * wait for the next call. One call at a time: a second waits for the first.
   * `write` resolves false when the store had the batch already.
   */
  flush(
    take: () => readonly T[],
    write: (id: string, rows: readonly T[]) => Promise<boolean>,
  ): Promise<void> {
    const run = async () => {
      await this.send(write);
      const rows = take();
      for (let i = 0; i < rows.length; i += this.chunkSize)
        this.batches.push({ id: this.newId(), rows: rows.slice(i, i + this.chunkSize) });
      this.rowCount += rows.length;
      await this.send(write);
    };
    const attempt = () =>
      run().catch((err: unknown) => {
        this.keptCount = this.rowCount;
        throw err;
      });
    const next = this.writing.then(attempt, attempt);
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async send(write: (id: string, rows: readonly T[]) => Promise<boolean>): Promise<void> {
    for (let b = this.batches[0]; b; b = this.batches[0]) {
      if (!(await write(b.id, b.rows))) this.alreadyWrittenCount++;
      this.batches.shift();
      this.rowCount -= b.rows.length;
      this.keptCount = Math.max(0, this.keptCount - b.rows.length);
    }
  }
}
