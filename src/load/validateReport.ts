import { validateFigure } from '../core/validateFigure.js';
import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import type { LoadFigures } from './types.js';

/** Longest host name accepted, in UTF-8 bytes. */
export const MAX_HOST_BYTES = 256;

const PERCENTS = ['cpuPercent', 'memoryPercent', 'diskPercent'] as const;
const RATES = [
  'diskReadBytesPerSec',
  'diskWriteBytesPerSec',
  'netRxBytesPerSec',
  'netTxBytesPerSec',
  'loadAvg1m',
] as const;

/** Proto field names, so that errors name the field the caller sent. */
const FIELD: Record<keyof LoadFigures, string> = {
  cpuPercent: 'cpu_percent',
  memoryPercent: 'memory_percent',
  diskPercent: 'disk_percent',
  diskReadBytesPerSec: 'disk_read_bytes_per_sec',
  diskWriteBytesPerSec: 'disk_write_bytes_per_sec',
  netRxBytesPerSec: 'net_rx_bytes_per_sec',
  netTxBytesPerSec: 'net_tx_bytes_per_sec',
  loadAvg1m: 'load_avg_1m',
};

/** Throws ValidationError unless `host` is 1 to 256 bytes of storable text. */
export function validateHost(host: string, field = 'host'): string {
  if (host.length === 0) throw new ValidationError(field, 'is required');
  return validateText(host, field, MAX_HOST_BYTES);
}

/**
 * An executor's report: percentages in 0-100, rates and load average at least 0, every figure
 * finite and not subnormal (see validateFigure).
 */
export function validateReport(
  report: LoadFigures & { host: string },
): LoadFigures & { host: string } {
  validateHost(report.host);
  for (const key of PERCENTS) {
    const v = validateFigure(report[key], FIELD[key]);
    if (v < 0 || v > 100)
      throw new ValidationError(FIELD[key], `must be a percentage in 0-100, got ${v}`);
  }
  for (const key of RATES) {
    const v = validateFigure(report[key], FIELD[key]);
    if (v < 0) throw new ValidationError(FIELD[key], `must be 0 or more, got ${v}`);
  }
  return report;
}

/** WatchLoad's interval: 100 ms to 1 h. */
export function validateWatchInterval(intervalMs: number): number {
  if (!Number.isFinite(intervalMs) || intervalMs < 100)
    throw new ValidationError('interval', 'must be at least 100ms');
  if (intervalMs > 3_600_000) throw new ValidationError('interval', 'must be at most 1h');
  return intervalMs;
}

/**
 * A list of host names, each at most 256 bytes of storable text (undefined: every host); an
 * error names the element, `hosts[2]`.
 */
export function validateHosts(
  hosts: readonly string[] | undefined,
  field = 'hosts',
): string[] | undefined {
  if (hosts === undefined) return undefined;
  hosts.forEach((h, i) => validateText(h, `${field}[${i}]`, MAX_HOST_BYTES));
  return [...hosts];
}
