/** A sampled percentage made safe to report: finite and within 0–100. */
export function clampPercent(v: number): number {
  return Number.isFinite(v) ? Math.min(100, Math.max(0, v)) : 0;
}
