import { describe, expect, it } from 'vitest';
import { parseProcStat, parseVmHwm } from '../../clients/typescript/src/executor/procStat.js';
import { TailBuffer } from '../../clients/typescript/src/executor/TailBuffer.js';

// A /proc/<pid>/stat line of proc(5): utime 14, stime 15, cutime 16, cstime 17, starttime 22.
const stat = (comm: string) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 900 0 0 0 31 7 5 2 20 0 1 0 987654 12345678 2048 ` +
  '18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n';

describe('/proc/<pid>/stat', () => {
  it('reads own and waited-for children CPU ticks and the start time', () => {
    expect(parseProcStat(stat('node'))).toEqual({ ticks: 38, childTicks: 7, startTime: 987654 });
  });

  it('reads past a command name holding spaces and parentheses', () => {
    expect(parseProcStat(stat('a) (b c) 9 9'))).toEqual({
      ticks: 38,
      childTicks: 7,
      startTime: 987654,
    });
  });

  it('refuses text that is not a stat line', () => {
    expect(parseProcStat('')).toBeUndefined();
    expect(parseProcStat('4242 (node) S 1 2')).toBeUndefined();
  });
});

describe('/proc/<pid>/status', () => {
  it('reads VmHWM in bytes, and nothing for a zombie', () => {
    expect(
      parseVmHwm('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n'),
    ).toBe(123456 * 1024);
    expect(parseVmHwm('Name:\tnode\nState:\tZ (zombie)\n')).toBeUndefined();
  });
});

describe('TailBuffer', () => {
  it('keeps everything below the limit', () => {
    const t = new TailBuffer(10);
    t.push(Buffer.from('abc'));
    t.push(Buffer.from('def'));
    expect([t.toString(), t.truncated, t.totalBytes]).toEqual(['abcdef', false, 6]);
  });

  it('keeps the last bytes, across chunk borders, and counts all', () => {
    const t = new TailBuffer(5);
    for (const c of ['abc', 'defg', 'hi', 'jklmnop']) t.push(Buffer.from(c));
    expect([t.toString(), t.truncated, t.totalBytes]).toEqual(['lmnop', true, 16]);
    t.push(Buffer.from('q'));
    expect(t.toString()).toBe('mnopq');
  });

  it('keeps nothing with a limit of 0', () => {
    const t = new TailBuffer(0);
    t.push(Buffer.from('abc'));
    expect([t.toString(), t.truncated]).toEqual(['', true]);
  });
});
