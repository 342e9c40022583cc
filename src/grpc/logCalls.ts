import { status } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import type { CallObserver } from './CallObserver.js';
import type { Middleware } from './Middleware.js';
import { toStatus } from './toStatus.js';

/**
 * One log line per call (method, status, ms and the context's log fields) and one observation
 * for metrics. Internal errors are logged with their stack here, once; callers see only the
 * fixed message toStatus gives them.
 */
export function logCalls(logger: Logger, observer?: CallObserver): Middleware {
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
      if (logger.isLevelEnabled('info')) {
        logger.info({ method: ctx.method, status: status[code], ms, ...ctx.logFields }, 'call');
      }
    }
  };
}
