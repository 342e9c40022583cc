import type { Logger } from '../log.js';

/**
 * Stop steps of what has been started, run last-first. A failed step is logged and the rest
 * still run, so one stuck part never keeps the database or the embedded server running.
 */
export class Stops {
  private readonly steps: (() => Promise<void> | void)[] = [];

  constructor(private readonly logger: Logger) {}

  push(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  /** Takes `part`'s stop as the next step and hands `part` back. */
  own<P extends { stop(): Promise<void> | void }>(part: P): P {
    this.push(() => part.stop());
    return part;
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      await Promise.resolve()
        .then(step)
        .catch((err: unknown) => this.logger.warn({ err }, 'stop step failed'));
    }
  }
}
