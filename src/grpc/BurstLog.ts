import type { Logger } from '../log.js';

/**
 * One warning per burst of a repeated event: the first is logged at once, the others within
 * `windowMs` are counted and logged as one line when the window ends. An attack of thousands of
 * refused connections or cut requests gives two lines per window, not one per event.
 */
export class BurstLog {
  private timer: NodeJS.Timeout | undefined;
  private repeated = 0;
  private last: Record<string, unknown> = {};

  constructor(
    private readonly logger: Logger,
    private readonly message: string,
    private readonly windowMs = 10_000,
  ) {}

  event(fields: Record<string, unknown>): void {
    if (this.timer === undefined) {
      this.logger.warn(fields, this.message);
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
      return;
    }
    this.repeated++;
    this.last = fields;
  }

  private flush(): void {
    this.timer = undefined;
    if (this.repeated === 0) return;
    this.logger.warn(
      { ...this.last, repeated: this.repeated, windowMs: this.windowMs },
      `${this.message} (repeated)`,
    );
    this.repeated = 0;
  }
}
