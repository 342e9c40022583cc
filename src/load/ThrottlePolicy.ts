import { validateFigure } from '../core/validateFigure.js';
import { ValidationError } from '../errors.js';
import type { Thresholds } from './types.js';

/**
 * The throttle factor of one metric: 1.0 below `slight`, 0.8 below `moderate`, 0.6 below
 * `heavy`, 0.3 up to and including `critical`, 0 above it.
 */
export function metricFactor(percent: number, t: Thresholds): number {
  if (percent < t.slight) return 1.0;
  if (percent < t.moderate) return 0.8;
  if (percent < t.heavy) return 0.6;
  if (percent <= t.critical) return 0.3;
  return 0.0;
}

/** A host's factor: the lower of its CPU's and its memory's. */
export function throttleFactor(cpuPercent: number, memoryPercent: number, t: Thresholds): number {
  return Math.min(metricFactor(cpuPercent, t), metricFactor(memoryPercent, t));
}

/**
 * Throws ValidationError naming the first bad field (`${prefix}.moderate`, ...) unless every
 * threshold is a number in 0-100 (finite, not subnormal) and each is above the one before.
 */
export function validateThresholds(t: Thresholds, prefix = 'thresholds'): Thresholds {
  const order = ['slight', 'moderate', 'heavy', 'critical'] as const;
  let previous = -Infinity;
  for (const name of order) {
    const v = validateFigure(t[name], `${prefix}.${name}`);
    if (v < 0 || v > 100)
      throw new ValidationError(`${prefix}.${name}`, `must be a percentage in 0-100, got ${v}`);
    if (v <= previous)
      throw new ValidationError(
        `${prefix}.${name}`,
        `must be above the previous threshold (${previous}): slight < moderate < heavy < critical`,
      );
    previous = v;
  }
  return { slight: t.slight, moderate: t.moderate, heavy: t.heavy, critical: t.critical };
}
