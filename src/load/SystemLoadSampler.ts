import { loadavg } from 'node:os';
import path from 'node:path';
import si from 'systeminformation';
import { clampPercent } from './clampPercent.js';
import type { LoadSampler } from './ports.js';
import type { HostSnapshot } from './types.js';

/**
 * This machine's load through systeminformation. Rates (disk, network) come from the
 * difference between two calls, so the first sample reports them as 0; network excludes
 * loopback, which would mostly count this service's own database traffic.
 */
export class SystemLoadSampler implements LoadSampler {
  /** @param dataPath a path on the volume whose use `diskPercent` reports. */
  constructor(private readonly dataPath: string) {}

  async sample(): Promise<Omit<HostSnapshot, 'host'>> {
    const [cpu, mem, fs, io, net] = await Promise.all([
      si.currentLoad(),
      si.mem(),
      si.fsSize().catch(() => []),
      si.fsStats().catch(() => null),
      si.networkStats('*').catch(() => []),
    ]);
    const abs = path.resolve(this.dataPath);
    // The volume holding dataPath is the mounted file system with the longest matching mount.
    const volume = fs
      .filter(
        (f) => abs === f.mount || abs.startsWith(f.mount.endsWith('/') ? f.mount : `${f.mount}/`),
      )
      .sort((a, b) => b.mount.length - a.mount.length)[0];
    const external = net.filter((n) => n.iface !== 'lo' && !n.iface.startsWith('lo'));
    return {
      at: new Date(),
      cpuPercent: clampPercent(cpu.currentLoad),
      memoryPercent: mem.total > 0 ? clampPercent((mem.active / mem.total) * 100) : 0,
      diskPercent: clampPercent(volume?.use ?? 0),
      diskReadBytesPerSec: rate(io?.rx_sec),
      diskWriteBytesPerSec: rate(io?.wx_sec),
      netRxBytesPerSec: external.reduce((s, n) => s + rate(n.rx_sec), 0),
      netTxBytesPerSec: external.reduce((s, n) => s + rate(n.tx_sec), 0),
      loadAvg1m: loadavg()[0] ?? 0,
    };
  }
}

function rate(v: number | null | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}
