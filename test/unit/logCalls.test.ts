import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LineBudget } from '../../src/grpc/LineBudget.js';
import { ValidationError } from '../../src/errors.js';
import type { CallContext } from '../../src/grpc/CallContext.js';
import { logCalls } from '../../src/grpc/logCalls.js';

/** A logger at `level` whose lines are kept, parsed. */
function memoryLogger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

const ctx = (method: string) => ({ method, logFields: { tokenId: 7 } }) as unknown as CallContext;
const ok = () => Promise.resolve();
const refused = () => Promise.reject(new ValidationError('user_id', 'must not be empty'));

describe('logCalls', () => {
  it('logs no line for a call that succeeded at the default level, one at debug', async () => {
    const info = memoryLogger('info');
    await logCalls(info.logger)(ctx('CheckLimit'), ok);
    expect(info.lines).toEqual([]);
    const debug = memoryLogger('debug');
    await logCalls(debug.logger)(ctx('CheckLimit'), ok);
    expect(debug.lines).toMatchObject([
      { level: 20, msg: 'call', method: 'CheckLimit', status: 'OK', tokenId: 7 },
    ]);
  });

  it('logs a failed call at info with its status and the context fields', async () => {
    const { logger, lines } = memoryLogger('info');
    await expect(logCalls(logger)(ctx('CheckLimit'), refused)).rejects.toThrow(ValidationError);
    expect(lines).toMatchObject([
      { level: 30, msg: 'call', method: 'CheckLimit', status: 'INVALID_ARGUMENT', tokenId: 7 },
    ]);
    expect(lines[0]).not.toHaveProperty('notLogged');
  });

  it('logs at most the budget of failed calls a second, however many fail', async () => {
    const { logger, lines } = memoryLogger('info');
    const log = logCalls(logger, undefined, 5);
    const flood = Array.from({ length: 200 }, () => log(ctx('CheckLimit'), refused).catch(() => 0));
    await Promise.all(flood);
    expect(lines).toHaveLength(5);
  });
});

describe('LineBudget', () => {
  it('lets perSecond lines go in each second, and the next line to go counts those held back', () => {
    let now = 0;
    const budget = new LineBudget(2, () => now);
    expect([budget.take(), budget.take(), budget.take(), budget.take()]).toEqual([
      0,
      0,
      null,
      null,
    ]);
    now = 999;
    expect(budget.take()).toBeNull();
    now = 1000;
    expect(budget.take()).toBe(3);
    expect(budget.take()).toBe(0);
    expect(budget.take()).toBeNull();
  });

  it('lets no line go with a budget of 0', () => {
    const budget = new LineBudget(0, () => 0);
    expect([budget.take(), budget.take()]).toEqual([null, null]);
  });
});
