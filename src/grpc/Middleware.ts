import type { CallContext } from './CallContext.js';

/**
 * One step around every call: it may read the context, refuse the call by throwing (the
 * toStatus boundary maps the error), and observe how `next` ends. Authentication, logging and
 * metrics are middleware; handlers never do their work.
 */
export type Middleware = (ctx: CallContext, next: () => Promise<void>) => Promise<void>;

/** Runs `handler` inside `middleware`, the first one outermost. Composed once per method. */
export function composeMiddleware(
  middleware: readonly Middleware[],
): (ctx: CallContext, handler: () => Promise<void>) => Promise<void> {
  return middleware.reduceRight<(ctx: CallContext, handler: () => Promise<void>) => Promise<void>>(
    (inner, step) => (ctx, handler) => step(ctx, () => inner(ctx, handler)),
    (_ctx, handler) => handler(),
  );
}
