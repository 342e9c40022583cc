import { pino } from 'pino';

/** The structured logger every part receives from src/app/. */
export type Logger = pino.Logger;

/** How long a log line may wait in the buffer, in ms. */
const FLUSH_MS = 200;

/**
 * JSON lines on stdout, one object per event. A line per call at thousands of calls a second
 * would cost a write system call each, so lines are buffered (up to 8 KiB) and flushed every
 * 200 ms; shutdown flushes the rest.
 */
export function createLogger(level: string): Logger {
  const logger = pino(
    { level, base: { service: 'quota-authority' } },
    pino.destination({ dest: 1, sync: false, minLength: 8 * 1024 }),
  );
  setInterval(() => logger.flush(), FLUSH_MS).unref();
  return logger;
}

/** A logger for tests and tools that should stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
