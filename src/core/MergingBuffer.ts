/** How a {@link MergingBuffer} tells items apart and folds them together. */
export interface MergeRules<T> {
  /** Items with one key may be merged into one. */
  keyOf(item: T): string;
  /** A copy the buffer may change (merges write into it). */
  copy(item: T): T;
  /** Folds `item` into `into`, changing `into`. */
  merge(into: T, item: T): void;
  /** How many original entries an item stands for (1 unless it is itself a merge). */
  weight(item: T): number;
}

/**
 * Writes waiting to go out in one batch, bounded at `capacity` items. Past it, an item is merged
 * into the newest buffered item of its key, so nothing is silently lost; only an item whose key
 * has no buffered item while the buffer is full is dropped, and counted. A failed flush puts its
 * items back the same way.
 */
export class MergingBuffer<T> {
  private items: T[] = [];
  private newest = new Map<string, T>();
  private mergedCount = 0;
  private droppedCount = 0;

  constructor(
    private readonly rules: MergeRules<T>,
    private readonly capacity: number,
  ) {}

  /** Entries merged into another item because the buffer was full. */
  get merged(): number {
    return this.mergedCount;
  }

  /** Entries dropped: the buffer was full and held no item of their key. */
  get dropped(): number {
    return this.droppedCount;
  }

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    if (this.items.length < this.capacity) {
      const copy = this.rules.copy(item);
      this.items.push(copy);
      this.newest.set(this.rules.keyOf(item), copy);
      return;
    }
    const into = this.newest.get(this.rules.keyOf(item));
    if (into === undefined) {
      this.droppedCount += this.rules.weight(item);
      return;
    }
    this.mergedCount += this.rules.weight(item);
    this.rules.merge(into, item);
  }

  /** Hands what is buffered to `write`; on failure the items come back and the error is thrown. */
  async flush(write: (items: readonly T[]) => Promise<void>): Promise<number> {
    if (this.items.length === 0) return 0;
    const batch = this.items;
    this.items = [];
    this.newest = new Map();
    try {
      await write(batch);
      return batch.length;
    } catch (err) {
      for (const item of batch) this.add(item);
      throw err;
    }
  }
}
