import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from './config.js';
import { probeHealth, type HealthProbe, type ProbeTls } from './grpc/probeHealth.js';

/** The `healthcheck` command's options, as commander hands them over. */
export interface HealthcheckOptions {
  readonly address?: string;
  readonly service: string;
  readonly timeoutMs: number;
  readonly ca?: string;
  readonly serverName?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly insecure?: boolean;
  readonly plaintext?: boolean;
}

/** Why no probe can be made: the one line printed, before anything is dialled. */
class ProbeSetupError extends Error {}

/**
 * Where this replica answers: QUOTA_HOST (a wildcard bind is reached on loopback, IPv4, which a
 * "::" bind accepts too) and QUOTA_PORT.
 */
function localAddress(config: Config): string {
  if (config.port === 0)
    throw new ProbeSetupError('QUOTA_PORT=0 picks a port at start: pass --address');
  const host = ['0.0.0.0', '::', '[::]'].includes(config.host) ? '127.0.0.1' : config.host;
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${config.port}`;
}

function read(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ProbeSetupError(
      `${what} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

/**
 * The name the server's own certificate is for (its first DNS name, else its common name): a
 * probe on loopback still checks that the server presents a certificate for that name.
 */
function certificateName(pem: Buffer): string | undefined {
  try {
    const cert = new X509Certificate(pem);
    const dns = cert.subjectAltName
      ?.split(', ')
      .find((n) => n.startsWith('DNS:'))
      ?.slice(4);
    return dns ?? /^CN=(.+)$/m.exec(cert.subject)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * TLS when the server serves it (QUOTA_TLS_CERT) or an option asks for it. The server's
 * certificate is verified against --ca, else against QUOTA_TLS_CERT itself (enough for a
 * self-signed certificate or a file that holds the chain up to its root); --insecure skips
 * verification. Under mutual TLS the probe needs a client certificate (--cert, --key).
 */
function probeTls(config: Config, opts: HealthcheckOptions): ProbeTls | undefined {
  const served = config.tls;
  if (opts.plaintext) return undefined;
  if (!served && !opts.ca && !opts.insecure && !opts.cert) return undefined;
  if ((opts.cert === undefined) !== (opts.key === undefined))
    throw new ProbeSetupError('--cert and --key: give both or neither');
  if (served?.clientCaFile !== undefined && opts.cert === undefined)
    throw new ProbeSetupError(
      'the server asks for a client certificate (QUOTA_TLS_CLIENT_CA): pass --cert and --key',
    );
  const own = served ? read('QUOTA_TLS_CERT', served.certFile) : undefined;
  return {
    ca: opts.ca !== undefined ? read('--ca', opts.ca) : own,
    serverName: opts.serverName ?? (own && certificateName(own)),
    cert: opts.cert !== undefined ? read('--cert', opts.cert) : undefined,
    key: opts.key !== undefined ? read('--key', opts.key) : undefined,
    verify: !opts.insecure,
  };
}

/** The probe the options and the environment describe; throws ProbeSetupError or ConfigError. */
function describeProbe(opts: HealthcheckOptions, env: NodeJS.ProcessEnv): HealthProbe {
  const config = loadConfig(env);
  return {
    address: opts.address ?? localAddress(config),
    service: opts.service,
    timeoutMs: opts.timeoutMs,
    tls: probeTls(config, opts),
  };
}

/**
 * `healthcheck`: one grpc.health.v1.Health/Check; resolves with the exit status (0 only for
 * SERVING) and the line to print: on stdout for SERVING, on stderr otherwise.
 */
export async function healthcheck(
  opts: HealthcheckOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ readonly exitCode: 0 | 1; readonly line: string }> {
  let probe: HealthProbe;
  try {
    probe = describeProbe(opts, env);
  } catch (err) {
    if (err instanceof ConfigError) return { exitCode: 1, line: err.problems.join('; ') };
    if (err instanceof ProbeSetupError) return { exitCode: 1, line: err.message };
    throw err;
  }
  const result = await probeHealth(probe);
  const target = `${probe.address} ${probe.service === '' ? '(server)' : probe.service}`;
  if ('error' in result) return { exitCode: 1, line: `${target}: ${oneLine(result.error)}` };
  return { exitCode: result.status === 'SERVING' ? 0 : 1, line: `${target}: ${result.status}` };
}

function oneLine(text: string): string {
  // grpc-js ends its details with an empty "Resolution note:" when DNS had nothing to say.
  const line = text
    .replace(/\s+/g, ' ')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
