import { access, readdir, readFile, statfs } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { ReportLoadRequest } from '../gen/quota/v1/quota_service.js';
import {
  busyPercent,
  clampPercent,
  cpuTimes,
  diskBytes,
  diskUsedPercent,
  networkBytes,
  perSecond,
  type CpuTimes,
} from './hostFigures.js';

/** The figures of a ReportLoad, without the host. */
export type HostLoadFigures = Omit<ReportLoadRequest, 'host'>;

interface Counters {
  readonly at: number;
  readonly cpu: CpuTimes;
  readonly disk: { read: number; written: number } | undefined;
  readonly net: { rx: number; tx: number } | undefined;
}

const DEVICES_TTL_MS = 60_000;

/**
 * This host's load: CPU from os.cpus() time deltas, memory from os.totalmem()/freemem() (on
 * Linux freemem() is MemAvailable, so page cache does not count as used), the 1-minute load
 * average, and on Linux disk and network byte rates from /proc/diskstats and /proc/net/dev and
 * the use of the volume of `diskPath` from statfs. Rates are between two reads: the first read
 * gives CPU 0 and rates 0. Disk I/O counts physical block devices only (those with a `device`
 * link in /sys/block): partitions, device-mapper and loop devices would count bytes twice.
 * Elsewhere than on Linux the disk and network figures are 0.
 */
export class HostLoadReader {
  private last: Counters | undefined;
  private devices: { readonly at: number; readonly names: Promise<Set<string>> } | undefined;

  constructor(private readonly diskPath = '/') {}

  async read(): Promise<HostLoadFigures> {
    const linux = process.platform === 'linux';
    const [diskstats, netDev, devices, volume] = await Promise.all([
      linux ? readFile('/proc/diskstats', 'utf8').catch(() => undefined) : undefined,
      linux ? readFile('/proc/net/dev', 'utf8').catch(() => undefined) : undefined,
      linux ? this.blockDevices() : new Set<string>(),
      statfs(this.diskPath).catch(() => undefined),
    ]);
    const now: Counters = {
      at: performance.now(),
      cpu: cpuTimes(cpus()),
      disk: diskstats === undefined ? undefined : diskBytes(diskstats, devices),
      net: netDev === undefined ? undefined : networkBytes(netDev),
    };
    const before = this.last;
    this.last = now;
    const seconds = before ? (now.at - before.at) / 1000 : 0;
    const total = totalmem();
    return {
      cpuPercent: before ? busyPercent(before.cpu, now.cpu) : 0,
      memoryPercent: total > 0 ? clampPercent(((total - freemem()) / total) * 100) : 0,
      diskPercent: volume ? diskUsedPercent(volume) : 0,
      diskReadBytesPerSec: perSecond(now.disk?.read ?? 0, before?.disk?.read, seconds),
      diskWriteBytesPerSec: perSecond(now.disk?.written ?? 0, before?.disk?.written, seconds),
      netRxBytesPerSec: perSecond(now.net?.rx ?? 0, before?.net?.rx, seconds),
      netTxBytesPerSec: perSecond(now.net?.tx ?? 0, before?.net?.tx, seconds),
      loadAvg1m: Math.max(0, loadavg()[0] ?? 0),
    };
  }

  /** Block devices change only on hotplug: listed again at most once a minute. */
  private blockDevices(): Promise<Set<string>> {
    const now = performance.now();
    if (!this.devices || now - this.devices.at >= DEVICES_TTL_MS)
      this.devices = { at: now, names: physicalBlockDevices() };
    return this.devices.names;
  }
}

async function physicalBlockDevices(): Promise<Set<string>> {
  const names = await readdir('/sys/block').catch(() => [] as string[]);
  const backed = await Promise.all(
    names.map((n) =>
      access(`/sys/block/${n}/device`).then(
        () => n,
        () => undefined,
      ),
    ),
  );
  return new Set(backed.filter((n): n is string => n !== undefined));
}
