import { existsSync } from 'node:fs';
import { access, readFile, readdir, statfs } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { clampPercent } from './clampPercent.js';
import type { LoadSampler } from './ports.js';
import {
  cpuPercent,
  cpuTimes,
  diskBytes,
  diskPercent,
  memoryPercent,
  networkBytes,
  type CpuTimes,
} from './procfsFigures.js';
import type { HostSnapshot } from './types.js';

interface Counters {
  readonly at: number;
  readonly cpu: CpuTimes;
  readonly disk: { read: number; written: number };
  readonly net: { rx: number; tx: number };
}

/**
 * This Linux host's load read straight from /proc, /sys and statfs: a few small file reads per
 * sample, and no child processes. systeminformation (SystemLoadSampler, the sampler elsewhere)
 * runs about 30 commands per sample here (cat, grep, df, lsblk through a shell); at one sample a
 * second on two cores those forks alone stalled the server's calls by 5–10 ms every second
 * (measured), which is why Linux gets its own sampler.
 *
 * CPU, disk and network figures are rates between two samples, so the first sample reports CPU
 * since boot and the byte rates as 0. Disk I/O counts physical block devices only (those with a
 * `device` link in /sys/block): partitions, device-mapper, md and loop devices would count the
 * same bytes twice.
 */
export class LinuxLoadSampler implements LoadSampler {
  private last: Counters | undefined;
  /** Block devices change only on hotplug: listed again at most once a minute, not per sample. */
  private devices: { readonly at: number; readonly names: Promise<Set<string>> } | undefined;

  /** @param dataPath a path on the volume whose use `diskPercent` reports. */
  constructor(private readonly dataPath: string) {}

  /** Whether this host has the files this sampler reads. */
  static available(): boolean {
    return process.platform === 'linux' && existsSync('/proc/stat') && existsSync('/proc/meminfo');
  }

  async sample(): Promise<Omit<HostSnapshot, 'host'>> {
    const [stat, meminfo, diskstats, netDev, devices, volume] = await Promise.all([
      readFile('/proc/stat', 'utf8'),
      readFile('/proc/meminfo', 'utf8'),
      readFile('/proc/diskstats', 'utf8').catch(() => ''),
      readFile('/proc/net/dev', 'utf8').catch(() => ''),
      this.blockDevices(),
      volumeOf(this.dataPath),
    ]);
    const now: Counters = {
      at: performance.now(),
      cpu: cpuTimes(stat),
      disk: diskBytes(diskstats, devices),
      net: networkBytes(netDev),
    };
    const before = this.last;
    this.last = now;
    const seconds = before ? (now.at - before.at) / 1000 : 0;
    const perSecond = (a: number, b: number | undefined) =>
      b === undefined || seconds <= 0 ? 0 : Math.max(0, (a - b) / seconds);
    return {
      at: new Date(),
      cpuPercent: clampPercent(cpuPercent(now.cpu, before?.cpu)),
      memoryPercent: clampPercent(memoryPercent(meminfo)),
      diskPercent: clampPercent(volume ? diskPercent(volume) : 0),
      diskReadBytesPerSec: perSecond(now.disk.read, before?.disk.read),
      diskWriteBytesPerSec: perSecond(now.disk.written, before?.disk.written),
      netRxBytesPerSec: perSecond(now.net.rx, before?.net.rx),
      netTxBytesPerSec: perSecond(now.net.tx, before?.net.tx),
      loadAvg1m: loadavg()[0] ?? 0,
    };
  }

  private blockDevices(): Promise<Set<string>> {
    const now = performance.now();
    if (!this.devices || now - this.devices.at >= DEVICES_TTL_MS) {
      this.devices = { at: now, names: physicalBlockDevices() };
    }
    return this.devices.names;
  }
}

const DEVICES_TTL_MS = 60_000;

/** Names of the block devices backed by hardware (or a hypervisor's virtual disks). */
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

/** statfs of the volume holding `p`, from its nearest existing ancestor; undefined if none. */
async function volumeOf(p: string) {
  for (let dir = path.resolve(p); ; dir = path.dirname(dir)) {
    try {
      return await statfs(dir);
    } catch {
      if (dir === path.dirname(dir)) return undefined;
    }
  }
}
