import { hostname } from 'node:os';
import { z } from 'zod';

import type { FailureMode } from './core/failureMode.js';

/** The service's whole configuration, read once from the environment and frozen. */
export interface Config {
  /** Interface the gRPC server binds. */
  readonly host: string;
  /** gRPC port; 0 picks a free one. */
  readonly port: number;
  /** What one client can hold of the server: connections, calls, request size and time. */
  readonly server: ServerLimits;
  /** TLS files; undefined serves plaintext. */
  readonly tls: TlsFiles | undefined;
  /** External PostgreSQL; undefined starts the embedded server in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Folder of the embedded PostgreSQL's data. */
  readonly dataDir: string;
  /** Bound on every database call on the decision path, in milliseconds. */
  readonly dbTimeoutMs: number;
  /** Answer while the database does not answer: open admits, closed denies. */
  readonly failureMode: FailureMode;
  /** Whether every call must carry a bearer token; `disabled` only when set so. */
  readonly auth: 'enabled' | 'disabled';
  /** An admin token stored (as its hash) at start; undefined: none is configured. */
  readonly adminToken: string | undefined;
  /** IANA time zone that calendar periods (day, week, month) are aligned in. */
  readonly timezone: string;
  /** An admitted command's reservation expires (and stays counted) after this, in seconds. */
  readonly reservationTtlS: number;
  /** Host load sampling interval, in milliseconds. */
  readonly loadIntervalMs: number;
  /** Name this replica's own load samples are reported under. */
  readonly hostName: string;
  /** Days of load history and throttle events kept. */
  readonly loadHistoryDays: number;
  /** Days kept of the other data past which the retention task deletes it. */
  readonly retention: {
    readonly executionsDays: number;
    readonly violationsDays: number;
    /** Hourly rollups: decision statistics and hourly load. */
    readonly rollupsDays: number;
  };
  /** The violation audit, decision statistics and attack detection. */
  readonly audit: AuditSettings;
  /** Load thresholds of the throttle policy, in percent. */
  readonly throttleThresholds: {
    readonly slight: number;
    readonly moderate: number;
    readonly heavy: number;
    readonly critical: number;
  };
  /** Port of the Prometheus metrics endpoint; 0 disables it. */
  readonly metricsPort: number;
  /** pino log level. */
  readonly logLevel: string;
  /** Failed calls logged a second at most. */
  readonly logFailedCallsPerSecond: number;
  /** Connections in the database pool. */
  readonly dbPoolSize: number;
  /** Secret API keys are hashed under; undefined uses the one generated in the database. */
  readonly apiKeySecret: string | undefined;
  /** Prefix length, in bits, of the IPv6 network that one IPv6 caller is counted by. */
  readonly ipv6PrefixBits: number;
}

/** Bounds on what clients can hold of the gRPC server (see src/grpc/ConnectionGuard.ts). */
export interface ServerLimits {
  /** Open client connections at most. */
  readonly maxConnections: number;
  /** Calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxStreamsPerConnection: number;
  /** Largest request message, in bytes. */
  readonly maxMessageBytes: number;
  /** A connection with no call open for this long is closed, in milliseconds. */
  readonly idleTimeoutMs: number;
  /** A request whose message has not fully arrived after this long is cut, in milliseconds. */
  readonly messageTimeoutMs: number;
  /** Requests whose message has not fully arrived, at most, across all connections. */
  readonly maxIncompleteRequests: number;
}

/** What the audit records and when it flags (and may block) a key. */
export interface AuditSettings {
  /** Whether denials are recorded as violations (statistics and metrics are always kept). */
  readonly enabled: boolean;
  /** Distinct violation rows buffered between flushes; past it, details are folded away. */
  readonly bufferSize: number;
  /** Window of both attack patterns, in seconds. */
  readonly attackWindowS: number;
  /** A key denied more than this many times within the window is flagged. */
  readonly attackDenials: number;
  /** An IP presenting at least this many distinct users or API keys within the window is flagged. */
  readonly attackIdentities: number;
  /** A flagged key is denied on every replica for this long, in seconds; 0 flags only. */
  readonly blockS: number;
}

/** PEM files of the server's TLS. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA of the client certificates; set, a client must present one (mutual TLS). */
  readonly clientCaFile: string | undefined;
}

interface Variable {
  readonly name: string;
  readonly default: string | undefined;
  readonly description: string;
  readonly schema: z.ZodType;
  /** Its value is never printed, not even in an error. */
  readonly secret?: boolean;
}

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be 0 to 65535')
  .max(65535, 'must be 0 to 65535');
const whole = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be ${min} to ${max}`)
    .max(max, `must be ${min} to ${max}`);
const percent = z.coerce
  .number({ error: 'must be a number' })
  .min(0, 'must be 0 to 100')
  .max(100, 'must be 0 to 100');

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Every variable the service reads, with its default; `--help` prints this table. */
export const VARIABLES: readonly Variable[] = [
  {
    name: 'QUOTA_HOST',
    default: '0.0.0.0',
    description: 'gRPC bind address',
    schema: z.string().min(1),
  },
  {
    name: 'QUOTA_PORT',
    default: '50051',
    description: 'gRPC port (0 picks a free port)',
    schema: port,
  },
  {
    name: 'QUOTA_MAX_CONNECTIONS',
    default: '1000',
    description:
      'open client connections at most (kept 128 below the open-file limit); at the cap a new connection closes the longest-idle one, or is refused when every one has a call open',
    schema: whole(1, 1_000_000),
  },
  {
    name: 'QUOTA_MAX_STREAMS_PER_CONNECTION',
    default: '1000',
    description:
      'calls open at once on one connection (HTTP/2 max concurrent streams); clients queue the rest',
    schema: whole(1, 100_000),
  },
  {
    name: 'QUOTA_MAX_MESSAGE_BYTES',
    default: '65536',
    description:
      'largest request message, bytes (the largest valid one is about 5 KB); a larger one is answered RESOURCE_EXHAUSTED',
    schema: whole(1024, 4 * 1024 * 1024),
  },
  {
    name: 'QUOTA_IDLE_TIMEOUT_MS',
    default: '60000',
    description:
      'a connection with no call open (or a TLS handshake) for this long is closed; clients reconnect on their next call, ms',
    schema: whole(100, 86_400_000),
  },
  {
    name: 'QUOTA_MESSAGE_TIMEOUT_MS',
    default: '10000',
    description:
      'a request whose message has not fully arrived after this long is answered DEADLINE_EXCEEDED and closed, ms',
    schema: whole(50, 600_000),
  },
  {
    name: 'QUOTA_MAX_INCOMPLETE_REQUESTS',
    default: '1000',
    description:
      'requests whose message has not fully arrived, across connections; past it the oldest is answered RESOURCE_EXHAUSTED',
    schema: whole(1, 1_000_000),
  },
  {
    name: 'QUOTA_TLS_CERT',
    default: undefined,
    description: 'PEM certificate (chain) file: serve TLS (with QUOTA_TLS_KEY); unset: plaintext',
    schema: z.string().min(1),
  },
  {
    name: 'QUOTA_TLS_KEY',
    default: undefined,
    description: 'PEM private key file of QUOTA_TLS_CERT',
    schema: z.string().min(1),
  },
  {
    name: 'QUOTA_TLS_CLIENT_CA',
    default: undefined,
    description:
      'PEM CA file: every client must present a certificate it signed (mutual TLS); unset: none asked',
    schema: z.string().min(1),
  },
  {
    name: 'DATABASE_URL',
    default: undefined,
    description: 'PostgreSQL URL; unset runs an embedded PostgreSQL in QUOTA_DATA_DIR',
    schema: z.url({
      protocol: /^postgres(ql)?$/,
      error: 'must be a postgres:// or postgresql:// URL',
    }),
  },
  {
    name: 'QUOTA_DATA_DIR',
    default: './.data',
    description: 'data folder of the embedded PostgreSQL',
    schema: z.string().min(1),
  },
  {
    name: 'QUOTA_DB_TIMEOUT_MS',
    default: '250',
    description: 'a decision waiting longer on the database gets the failure mode within it, ms',
    schema: z.coerce.number().int().min(10).max(60000),
  },
  {
    name: 'QUOTA_FAILURE_MODE',
    default: 'open',
    description: 'answer while the database does not answer: open (allow) | closed (deny)',
    schema: z.enum(['open', 'closed']),
  },
  {
    name: 'QUOTA_AUTH',
    default: 'enabled',
    description:
      'enabled: every call needs "authorization: Bearer <token>"; disabled: none does (warned at every start)',
    schema: z.enum(['enabled', 'disabled']),
  },
  {
    name: 'QUOTA_ADMIN_TOKEN',
    default: undefined,
    description:
      'an admin token, stored as its hash at start, at least 32 characters; unset: when the database holds no token, the first start makes one and prints it on stderr',
    schema: z
      .string()
      .min(32, 'must be at least 32 characters (openssl rand -base64 32 makes one)')
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII with no spaces'),
    secret: true,
  },
  {
    name: 'QUOTA_TIMEZONE',
    default: 'UTC',
    description: 'IANA time zone calendar periods align to',
    schema: z.string().refine(isTimeZone, 'must be an IANA time zone such as UTC or Europe/Paris'),
  },
  {
    name: 'QUOTA_RESERVATION_TTL_S',
    default: '3600',
    description:
      'seconds after which an admitted command never recorded expires (its units stay counted)',
    schema: z.coerce
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600),
  },
  {
    name: 'QUOTA_LOAD_INTERVAL_MS',
    default: '1000',
    description: 'host load sampling interval, ms',
    schema: z.coerce.number().int().min(100).max(600000),
  },
  {
    name: 'QUOTA_HOST_NAME',
    default: undefined,
    description: "host name of this replica's own load samples (unset: the OS host name)",
    schema: z
      .string()
      .min(1)
      .refine((s) => Buffer.byteLength(s, 'utf8') <= 256, 'must be at most 256 bytes'),
  },
  {
    name: 'QUOTA_LOAD_HISTORY_DAYS',
    default: '7',
    description: 'days of load history and throttle events kept',
    schema: z.coerce.number().int().min(1).max(3650),
  },
  {
    name: 'QUOTA_EXECUTIONS_DAYS',
    default: '30',
    description: 'days of recorded executions kept',
    schema: whole(1, 3650),
  },
  {
    name: 'QUOTA_VIOLATIONS_DAYS',
    default: '30',
    description: 'days of violations and attack flags kept',
    schema: whole(1, 3650),
  },
  {
    name: 'QUOTA_ROLLUPS_DAYS',
    default: '90',
    description: 'days of hourly rollups kept (decision statistics, hourly load)',
    schema: whole(1, 3650),
  },
  {
    name: 'QUOTA_AUDIT',
    default: 'on',
    description:
      'on: every denial is recorded as a violation (in batches, off the hot path); off: not recorded (statistics and metrics still are)',
    schema: z.enum(['on', 'off']),
  },
  {
    name: 'QUOTA_AUDIT_BUFFER',
    default: '50000',
    description:
      'distinct violation rows buffered between flushes; past it a denial is counted under its rule without its details',
    schema: whole(100, 10_000_000),
  },
  {
    name: 'QUOTA_ATTACK_WINDOW_S',
    default: '60',
    description: 'window of attack detection, seconds',
    schema: whole(10, 86_400),
  },
  {
    name: 'QUOTA_ATTACK_DENIALS',
    default: '100',
    description: 'a key denied more than this many times within the window is flagged as an attack',
    schema: whole(1, 100_000_000),
  },
  {
    name: 'QUOTA_ATTACK_IDENTITIES',
    default: '20',
    description:
      'an IP presenting at least this many distinct users or API keys within the window is flagged as an attack',
    schema: whole(2, 100_000),
  },
  {
    name: 'QUOTA_BLOCK_S',
    default: '0',
    description:
      'a flagged key (IP, user or API key) is denied on every replica for this long, seconds; 0 only flags',
    schema: whole(0, 30 * 86_400),
  },
  {
    name: 'QUOTA_THROTTLE_SLIGHT',
    default: '70',
    description: 'load % from which the throttle factor is 0.8',
    schema: percent,
  },
  {
    name: 'QUOTA_THROTTLE_MODERATE',
    default: '80',
    description: 'load % from which the factor is 0.6',
    schema: percent,
  },
  {
    name: 'QUOTA_THROTTLE_HEAVY',
    default: '90',
    description: 'load % from which the factor is 0.3',
    schema: percent,
  },
  {
    name: 'QUOTA_THROTTLE_CRITICAL',
    default: '95',
    description: 'load % above which the factor is 0',
    schema: percent,
  },
  {
    name: 'QUOTA_METRICS_PORT',
    default: '9464',
    description: 'Prometheus metrics port (0 disables)',
    schema: port,
  },
  {
    name: 'QUOTA_DB_POOL_SIZE',
    default: '16',
    description: 'connections in the database pool',
    schema: z.coerce.number().int().min(2).max(500),
  },
  {
    name: 'QUOTA_API_KEY_SECRET',
    default: undefined,
    description:
      'secret API keys are hashed under (HMAC-SHA256), at least 32 bytes; unset: one generated and kept in the database. Changing it starts API-key counters afresh',
    schema: z
      .string()
      .refine((s) => Buffer.byteLength(s, 'utf8') >= 32, 'must be at least 32 bytes'),
    secret: true,
  },
  {
    name: 'QUOTA_IPV6_PREFIX',
    default: '64',
    description: 'IPv6 callers are counted per network of this prefix length, bits (32-128)',
    schema: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(32, 'must be 32 to 128')
      .max(128, 'must be 32 to 128'),
  },
  {
    name: 'QUOTA_LOG_FAILED_CALLS_PER_S',
    default: '20',
    description:
      'failed calls logged a second at most (info); the next line counts those held back; successful calls log at debug',
    schema: z.coerce.number().int().min(0).max(1_000_000),
  },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    description: 'log level: fatal|error|warn|info|debug|trace|silent',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  },
];

/** Thrown with one line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const values = new Map<string, unknown>();
  const problems: string[] = [];
  for (const v of VARIABLES) {
    const raw = env[v.name];
    const text = raw === undefined || raw === '' ? v.default : raw;
    if (text === undefined) {
      values.set(v.name, undefined);
      continue;
    }
    const parsed = v.schema.safeParse(text);
    if (parsed.success) values.set(v.name, parsed.data);
    else
      problems.push(
        `${v.name}=${v.secret ? '(secret)' : JSON.stringify(text)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      );
  }
  const get = <T>(name: string): T => values.get(name) as T;
  const thresholds = {
    slight: get<number>('QUOTA_THROTTLE_SLIGHT'),
    moderate: get<number>('QUOTA_THROTTLE_MODERATE'),
    heavy: get<number>('QUOTA_THROTTLE_HEAVY'),
    critical: get<number>('QUOTA_THROTTLE_CRITICAL'),
  };
  if (
    problems.length === 0 &&
    !(
      thresholds.slight < thresholds.moderate &&
      thresholds.moderate < thresholds.heavy &&
      thresholds.heavy < thresholds.critical
    )
  ) {
    problems.push(
      'QUOTA_THROTTLE_*: thresholds must increase: SLIGHT < MODERATE < HEAVY < CRITICAL',
    );
  }
  const tlsCert = get<string | undefined>('QUOTA_TLS_CERT');
  const tlsKey = get<string | undefined>('QUOTA_TLS_KEY');
  const tlsClientCa = get<string | undefined>('QUOTA_TLS_CLIENT_CA');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    problems.push('QUOTA_TLS_CERT and QUOTA_TLS_KEY: set both or neither');
  } else if (tlsClientCa !== undefined && tlsCert === undefined) {
    problems.push('QUOTA_TLS_CLIENT_CA: needs QUOTA_TLS_CERT and QUOTA_TLS_KEY');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    host: get<string>('QUOTA_HOST'),
    port: get<number>('QUOTA_PORT'),
    server: Object.freeze({
      maxConnections: get<number>('QUOTA_MAX_CONNECTIONS'),
      maxStreamsPerConnection: get<number>('QUOTA_MAX_STREAMS_PER_CONNECTION'),
      maxMessageBytes: get<number>('QUOTA_MAX_MESSAGE_BYTES'),
      idleTimeoutMs: get<number>('QUOTA_IDLE_TIMEOUT_MS'),
      messageTimeoutMs: get<number>('QUOTA_MESSAGE_TIMEOUT_MS'),
      maxIncompleteRequests: get<number>('QUOTA_MAX_INCOMPLETE_REQUESTS'),
    }),
    tls:
      tlsCert === undefined || tlsKey === undefined
        ? undefined
        : Object.freeze({ certFile: tlsCert, keyFile: tlsKey, clientCaFile: tlsClientCa }),
    databaseUrl: get<string | undefined>('DATABASE_URL'),
    dataDir: get<string>('QUOTA_DATA_DIR'),
    dbTimeoutMs: get<number>('QUOTA_DB_TIMEOUT_MS'),
    failureMode: get<FailureMode>('QUOTA_FAILURE_MODE'),
    auth: get<'enabled' | 'disabled'>('QUOTA_AUTH'),
    adminToken: get<string | undefined>('QUOTA_ADMIN_TOKEN'),
    timezone: get<string>('QUOTA_TIMEZONE'),
    reservationTtlS: get<number>('QUOTA_RESERVATION_TTL_S'),
    loadIntervalMs: get<number>('QUOTA_LOAD_INTERVAL_MS'),
    hostName: get<string | undefined>('QUOTA_HOST_NAME') ?? hostname(),
    loadHistoryDays: get<number>('QUOTA_LOAD_HISTORY_DAYS'),
    retention: Object.freeze({
      executionsDays: get<number>('QUOTA_EXECUTIONS_DAYS'),
      violationsDays: get<number>('QUOTA_VIOLATIONS_DAYS'),
      rollupsDays: get<number>('QUOTA_ROLLUPS_DAYS'),
    }),
    audit: Object.freeze({
      enabled: get<string>('QUOTA_AUDIT') === 'on',
      bufferSize: get<number>('QUOTA_AUDIT_BUFFER'),
      attackWindowS: get<number>('QUOTA_ATTACK_WINDOW_S'),
      attackDenials: get<number>('QUOTA_ATTACK_DENIALS'),
      attackIdentities: get<number>('QUOTA_ATTACK_IDENTITIES'),
      blockS: get<number>('QUOTA_BLOCK_S'),
    }),
    throttleThresholds: Object.freeze(thresholds),
    metricsPort: get<number>('QUOTA_METRICS_PORT'),
    logLevel: get<string>('LOG_LEVEL'),
    logFailedCallsPerSecond: get<number>('QUOTA_LOG_FAILED_CALLS_PER_S'),
    dbPoolSize: get<number>('QUOTA_DB_POOL_SIZE'),
    apiKeySecret: get<string | undefined>('QUOTA_API_KEY_SECRET'),
    ipv6PrefixBits: get<number>('QUOTA_IPV6_PREFIX'),
  });
}

/** The environment table that `--help` prints. */
export function describeVariables(): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  return VARIABLES.map(
    (v) => `  ${v.name.padEnd(width)}  ${v.description} (default: ${v.default ?? 'unset'})`,
  ).join('\n');
}
