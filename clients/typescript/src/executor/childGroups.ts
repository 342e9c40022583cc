import { isMainThread } from 'node:worker_threads';

/**
 * The process groups of executor children. Each child is spawned detached (setsid): the leader of
 * a process group of its own, so that a timeout or an abort signals it with every descendant
 * (`sh -c`, `npm test`), which would otherwise survive it, orphaned, holding its output pipes.
 *
 * The price: the children no longer share this process's group and terminal, so the terminal's
 * Ctrl-C (SIGINT to its foreground group) and hangup no longer reach them by themselves. While a
 * group is tracked, this module therefore listens to SIGINT, SIGHUP and SIGTERM:
 * - SIGINT and SIGHUP are passed on to every group, as the terminal did;
 * - SIGTERM is passed on only when nothing else in the process listens to it, that is when the
 *   process dies from it; a process that handles SIGTERM itself (a graceful drain) decides what
 *   becomes of its commands (abort their runs' signals to stop them);
 * - when nothing else listens, the signal is raised again once the listener is gone, so that the
 *   process still dies from it as it did without the executor.
 * And on 'exit' (process.exit(), or the end of the event loop) every tracked group gets SIGKILL:
 * nothing would stop, reap or record them afterwards.
 */

/** Process groups exist (and detached means a new one) everywhere but on Windows. */
export const OWN_GROUPS = process.platform !== 'win32';

const FORWARDED = ['SIGINT', 'SIGHUP', 'SIGTERM'] as const;
/** Marks this module's listeners, so that every copy of the package tells them from others'. */
const FORWARDER = Symbol.for('@quota-authority/client.signalForwarder');

const tracked = new Set<number>();
const forwarders = new Map<NodeJS.Signals, () => void>();

/** Signals the group `pid` leads (on Windows the child alone); never throws. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(OWN_GROUPS ? -pid : pid, signal);
  } catch {
    // ESRCH: every member is gone (reaped). Nothing else can fail for a group we created.
  }
}

/** Whether any process (a zombie too) is still in the group `pid` leads. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(OWN_GROUPS ? -pid : pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function trackGroup(pid: number): void {
  if (tracked.size === 0) listen();
  tracked.add(pid);
}

export function untrackGroup(pid: number): void {
  if (!tracked.delete(pid) || tracked.size > 0) return;
  process.removeListener('exit', killAll);
  for (const [signal, forward] of forwarders) process.removeListener(signal, forward);
}

function listen(): void {
  process.on('exit', killAll);
  // Signals reach the main thread only; a worker's process.kill(process.pid) would kill them all.
  if (!OWN_GROUPS || !isMainThread) return;
  for (const signal of FORWARDED) arm(signal);
}

function killAll(): void {
  for (const pid of tracked) signalGroup(pid, 'SIGKILL');
}

/** First in line, so that the others see the listener gone (see forward). */
function arm(signal: NodeJS.Signals): void {
  let forward = forwarders.get(signal);
  if (!forward) {
    forward = () => forwardSignal(signal, forward!);
    Object.defineProperty(forward, FORWARDER, { value: true });
    forwarders.set(signal, forward);
  }
  if (!process.listeners(signal).includes(forward)) process.prependListener(signal, forward);
}

function forwardSignal(signal: NodeJS.Signals, forward: () => void): void {
  // Gone before the other listeners run: code that dies again from the signal when its own
  // listeners are the only ones left (signal-exit) must not count this one.
  process.removeListener(signal, forward);
  const others = process.listeners(signal).filter((l) => !(FORWARDER in l)).length;
  if (signal !== 'SIGTERM' || others === 0) for (const pid of tracked) signalGroup(pid, signal);
  if (process.listenerCount(signal) === 0) {
    // Nothing handles it (another copy of the package, listening too, raises it last): die from
    // it, as without the executor. Node restored the default action with the last listener.
    process.kill(process.pid, signal);
    return;
  }
  // The process handles it and goes on: listen again for the next one.
  setImmediate(() => {
    if (tracked.size > 0) arm(signal);
  });
}
