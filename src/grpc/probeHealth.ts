import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** TLS of a probe: whom to trust, the name expected, and a client certificate if asked. */
export interface ProbeTls {
  /** PEM roots the server's certificate must chain to; undefined: Node's public roots. */
  readonly ca: Buffer | undefined;
  /** Name the certificate must be valid for; undefined: the host of the address. */
  readonly serverName: string | undefined;
  /** Client certificate and key, for a server that asks for one (mutual TLS). */
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** false accepts any certificate: encrypted, not authenticated. Only when asked for. */
  readonly verify: boolean;
}

export interface HealthProbe {
  /** host:port */
  readonly address: string;
  /** Service name the health service knows; "" is the whole server. */
  readonly service: string;
  /** Deadline of the whole call, connection included. */
  readonly timeoutMs: number;
  /** undefined: plaintext. */
  readonly tls: ProbeTls | undefined;
}

/** What the health service answered, or why there is no answer. */
export type ProbeResult =
  { readonly status: string } | { readonly error: string; readonly code: grpc.status | undefined };

interface HealthClient {
  check(
    req: { service: string },
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
  ): void;
  close(): void;
}

function credentials(tls: ProbeTls | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    tls.ca ?? null,
    tls.key ?? null,
    tls.cert ?? null,
    tls.verify ? {} : { rejectUnauthorized: false, checkServerIdentity: () => undefined },
  );
}

/**
 * One grpc.health.v1.Health/Check, as a container's health check makes it: no retry and no
 * waiting for a connection (an unreachable server is an answer: UNAVAILABLE), within
 * `timeoutMs`. Never rejects.
 */
export function probeHealth(probe: HealthProbe): Promise<ProbeResult> {
  const Client = grpc.makeGenericClientConstructor(healthService, 'Health');
  const options: grpc.ChannelOptions =
    probe.tls?.serverName === undefined
      ? {}
      : { 'grpc.ssl_target_name_override': probe.tls.serverName };
  const client = new Client(probe.address, credentials(probe.tls), {
    ...options,
    // One try: a second connection attempt would only hide how the first failed.
    'grpc.enable_retries': 0,
  }) as unknown as HealthClient;
  return new Promise<ProbeResult>((resolve) => {
    client.check(
      { service: probe.service },
      { deadline: Date.now() + probe.timeoutMs },
      (err, res) => {
        client.close();
        if (err) resolve({ error: `${grpc.status[err.code]}: ${err.details}`, code: err.code });
        else resolve({ status: res?.status ?? 'UNKNOWN' });
      },
    );
  });
}
