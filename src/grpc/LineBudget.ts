/**
 * At most `perSecond` log lines a second (a fixed one-second window): under a flood of failed
 * calls the log stays readable and its writes stay off the hot path, while the lines held back
 * are counted and reported by the next line that goes. Metrics count every call regardless.
 */
export class LineBudget {
  private windowStart = -Infinity;
  private used = 0;
  private heldBack = 0;

  constructor(
    private readonly perSecond: number,
    /** Milliseconds on a monotonic clock. @default performance.now */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * null when the line is to be held back; otherwise the number of lines held back since the
   * last line that went (0 for none), which that line reports.
   */
  take(): number | null {
    const now = this.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perSecond) {
      this.heldBack += 1;
      return null;
    }
    this.used += 1;
    const held = this.heldBack;
    this.heldBack = 0;
    return held;
  }
}
