import { constants as bufferConstants } from 'node:buffer';
import { constants } from 'node:os';
import { types } from 'node:util';
import type { ChildProcessSpec } from './ChildProcessSpec.js';
import { describe, timerMs } from './checkOptions.js';

/**
 * A {@link ChildProcessSpec} checked and copied once, before any quota is asked for, with its
 * defaults: what runs is what was checked, whatever getters or later changes of the spec do.
 */
export interface CheckedChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly env: NodeJS.ProcessEnv | undefined;
  readonly input: string | Uint8Array | undefined;
  readonly output: 'capture' | 'inherit' | 'ignore';
  readonly maxOutputBytes: number;
  readonly killSignal: NodeJS.Signals;
  readonly killGraceMs: number;
}

const OUTPUTS: readonly unknown[] = ['capture', 'inherit', 'ignore'];
const MIB = 1024 * 1024;

/**
 * Throws a TypeError or RangeError naming the field for a spec that could not be spawned or
 * supervised (each of these used to fail only after the spawn, or in a timer).
 */
export function checkChildSpec(spec: ChildProcessSpec): CheckedChildSpec {
  if (typeof spec !== 'object' || spec === null)
    throw new TypeError(
      `run: the task must be a function or a child process spec, got ${describe(spec)}`,
    );
  const { command, args, cwd, env, input, output, maxOutputBytes, killSignal, killGraceMs } = spec;
  if (typeof command !== 'string' || command === '')
    throw new TypeError('run: a child process needs a non-empty `command`');
  if (args !== undefined && !(Array.isArray(args) && args.every(isString)))
    throw new TypeError('run: `args` must be an array of strings');
  if (cwd !== undefined && typeof cwd !== 'string')
    throw new TypeError(`run: \`cwd\` must be a string, got ${describe(cwd)}`);
  const envCopy = env === undefined ? undefined : checkEnv(env);
  // Node's streams take strings and Uint8Arrays (Buffers): anything else threw after the spawn.
  if (input !== undefined && typeof input !== 'string' && !types.isUint8Array(input))
    throw new TypeError(`run: \`input\` must be a string or a Uint8Array, got ${describe(input)}`);
  if (output !== undefined && !OUTPUTS.includes(output))
    throw new TypeError(
      `run: \`output\` must be 'capture', 'inherit' or 'ignore', got ${describe(output)}`,
    );
  if (
    maxOutputBytes !== undefined &&
    (typeof maxOutputBytes !== 'number' ||
      !Number.isInteger(maxOutputBytes) ||
      maxOutputBytes < 0 ||
      maxOutputBytes > bufferConstants.MAX_STRING_LENGTH)
  )
    throw new RangeError(
      `run: \`maxOutputBytes\` must be a whole number from 0 to ${bufferConstants.MAX_STRING_LENGTH} ` +
        `(the longest string), got ${describe(maxOutputBytes)}`,
    );
  // An unknown name threw ERR_UNKNOWN_SIGNAL from the timeout's timer: the process crashed.
  if (
    killSignal !== undefined &&
    !(typeof killSignal === 'string' && Object.hasOwn(constants.signals, killSignal))
  )
    throw new TypeError(
      `run: \`killSignal\` must be a signal name such as 'SIGTERM', got ${describe(killSignal)}`,
    );
  const copy: CheckedChildSpec = {
    command,
    args: args === undefined ? [] : [...args],
    cwd,
    env: envCopy,
    input,
    output: output ?? 'capture',
    maxOutputBytes: maxOutputBytes ?? MIB,
    killSignal: killSignal ?? 'SIGTERM',
    killGraceMs: killGraceMs === undefined ? 5000 : timerMs(killGraceMs, 'killGraceMs', true),
  };
  // spawn() refuses NUL bytes: refused here, nothing is asked for a spec that cannot run.
  noNul(command, 'command');
  if (cwd !== undefined) noNul(cwd, 'cwd');
  copy.args.forEach((a, i) => noNul(a, `args[${i}]`));
  return copy;
}

function checkEnv(env: unknown): NodeJS.ProcessEnv {
  if (typeof env !== 'object' || env === null || Array.isArray(env))
    throw new TypeError(`run: \`env\` must be an object of strings, got ${describe(env)}`);
  const copy: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && typeof value !== 'string')
      throw new TypeError(`run: \`env.${key}\` must be a string, got ${describe(value)}`);
    noNul(key, `env.${key}`);
    if (value !== undefined) noNul(value, `env.${key}`);
    copy[key] = value;
  }
  return copy;
}

function noNul(text: string, name: string): void {
  if (text.includes('\0')) throw new TypeError(`run: \`${name}\` holds a NUL byte`);
}

const isString = (v: unknown): v is string => typeof v === 'string';
