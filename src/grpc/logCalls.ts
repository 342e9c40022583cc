import { status } from '@grpc/grpc-js';
import { LineBudget } from './LineBudget.js';
import type { Logger } from '../log.js';
import type { CallObserver } from './CallObserver.js';
import type { Middleware } from './Middleware.js';
import { toStatus } from './toStatus.js';

/**
 * One observation per call for metrics, and a log line per call: at `debug` for calls that
 * succeeded (thousands a second are not worth a line each by default), at `info` for the others,
 * at most `failedPerSecond` of those a second, the next line counting those held back
 * (`notLogged`). Internal errors are logged with their stack here, once, always; callers see
 * only the fixed message toStatus gives them.
 */
export function logCalls(
  logger: Logger,
  observer?: CallObserver,
  failedPerSecond = 20,
): Middleware {
  const budget = new LineBudget(failedPerSecond);
  return async (ctx, next) => {
    const started = performance.now();
    let code = status.OK;
    try {
      await next();
    } catch (err) {
      const mapped = toStatus(err);
      code = mapped.code;
      if (mapped.internal) logger.error({ err, method: ctx.method }, 'internal error');
      throw err;
    } finally {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      observer?.observe(ctx.method, code, ms);
      if (code === status.OK) {
        if (logger.isLevelEnabled('debug')) {
          logger.debug({ method: ctx.method, status: 'OK', ms, ...ctx.logFields }, 'call');
        }
      } else if (logger.isLevelEnabled('info')) {
        const held = budget.take();
        if (held !== null) {
          const fields = { method: ctx.method, status: status[code], ms, ...ctx.logFields };
          logger.info(held > 0 ? { ...fields, notLogged: held } : fields, 'call');
        }
      }
    }
  };
}
