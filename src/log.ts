import { pino } from 'pino';

/** The structured logger every part receives from app.ts. */
export type Logger = pino.Logger;

/**
 * JSON lines on stdout, one object per event. Writes are asynchronous (buffered) because a line
 * per call at thousands of calls a second would otherwise block the event loop; shutdown
 * flushes them.
 */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: 'quota-authority' } },
    pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger for tests and tools that should stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
