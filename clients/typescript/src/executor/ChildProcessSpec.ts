/**
 * A command run as a child process, spawned without a shell (arguments are passed as they are).
 * It is spawned detached, as the leader of a process group and session of its own, without a
 * controlling terminal: a timeout or an abort stops it with all its descendants. SIGINT and
 * SIGHUP this process receives are passed on to it (the terminal's no longer reach it), SIGTERM
 * only when nothing else in the process handles it, and process exit kills its group (SIGKILL).
 * Descendants left running by a command that ended by itself are not killed. Every field is
 * checked before any quota is asked for (TypeError or RangeError naming it).
 */
export interface ChildProcessSpec {
  /** The program: a path, or a name looked up in PATH. Required. */
  command: string;
  /**
   * Its arguments.
   * @default []
   */
  args?: readonly string[];
  /**
   * Its working directory.
   * @default process.cwd()
   */
  cwd?: string;
  /**
   * Its whole environment (not merged with this process's): strings (or undefined, left out).
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Written to its standard input, which is then closed.
   * @default none: standard input is /dev/null
   */
  input?: string | Uint8Array;
  /**
   * Its standard output and error: kept (their last `maxOutputBytes` each) in the result,
   * passed to this process's own (`inherit`), or discarded (`ignore`, /dev/null).
   * @default 'capture'
   */
  output?: 'capture' | 'inherit' | 'ignore';
  /**
   * Bytes kept of each of standard output and error when captured: the last ones, where errors
   * usually are; the result says when some were dropped. A whole number from 0 to
   * buffer.constants.MAX_STRING_LENGTH.
   * @default 1048576 (1 MiB)
   */
  maxOutputBytes?: number;
  /**
   * Signal that stops it (its whole process group) on the run's `signal` or `timeoutMs`: a name
   * of os.constants.signals.
   * @default 'SIGTERM'
   */
  killSignal?: NodeJS.Signals;
  /**
   * Time its process group gets to end after `killSignal` before SIGKILL, in milliseconds, from
   * 0 to 2147483647 (Node's longest timer). run() returns once the child itself has ended;
   * descendants still there get SIGKILL when this time is up.
   * @default 5000
   */
  killGraceMs?: number;
}

/** How a child process ended. */
export interface ChildOutcome {
  /** Its exit code; for a process ended by a signal, 128 + the signal's number as a shell says. */
  readonly exitCode: number;
  /** The signal that ended it, or null when it exited. */
  readonly signal: NodeJS.Signals | null;
  /** The end of its standard output (empty unless `output` is 'capture'). */
  readonly stdout: string;
  /** The end of its standard error (empty unless `output` is 'capture'). */
  readonly stderr: string;
  /** Whether the start of standard output or error was dropped to keep `maxOutputBytes`. */
  readonly truncated: boolean;
}
