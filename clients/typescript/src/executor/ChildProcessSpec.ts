/** A command run as a child process, spawned without a shell (arguments are passed as they are). */
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
   * Its whole environment (not merged with this process's).
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
   * passed to this process's own, or discarded.
   * @default 'capture'
   */
  output?: 'capture' | 'inherit' | 'ignore';
  /**
   * Bytes kept of each of standard output and error when captured: the last ones, where errors
   * usually are; the result says when some were dropped.
   * @default 1048576 (1 MiB)
   */
  maxOutputBytes?: number;
  /**
   * Signal that stops it on the run's `signal` or `timeoutMs`.
   * @default 'SIGTERM'
   */
  killSignal?: NodeJS.Signals;
  /**
   * Time it gets to end after `killSignal` before SIGKILL, in milliseconds.
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
