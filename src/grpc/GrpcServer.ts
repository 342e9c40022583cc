import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { addReflection } from './addReflection.js';
import { guardDeserialization } from './guardDeserialization.js';
import type { Logger } from '../log.js';
import {
  AdminServiceService,
  type AdminServiceServer,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  QuotaServiceService,
  type QuotaServiceServer,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { ADMIN_SERVICE, QUOTA_SERVICE } from './services.js';
import type { ServerLimits } from '../config.js';
import { ConnectionGuard, type Http2Listener } from './ConnectionGuard.js';

/** Names health answers for: the whole server ("") and each service. */
const SERVICES = ['', QUOTA_SERVICE, ADMIN_SERVICE];

export interface GrpcServerOptions {
  readonly logger: Logger;
  /** Every method of each service: a missing one fails to compile. */
  readonly quota: QuotaServiceServer;
  readonly admin: AdminServiceServer;
  /** What one client can hold: connections, calls, request size and time. */
  readonly limits: ServerLimits;
  /** Called when shutdown starts, before draining: ends server streams so they do not hold it. */
  readonly onShutdown?: () => void;
}

/**
 * The grpc-js server's options; the bench's floor server uses them too. grpc-js applies the
 * message size (RESOURCE_EXHAUSTED as soon as a length prefix claims more, before buffering),
 * the calls per connection (HTTP/2 SETTINGS) and the idle timeout (connections with no call
 * open); it has no connection cap and no timer for a message that never completes:
 * ConnectionGuard adds those.
 */
export function serverOptions(limits: ServerLimits): grpc.ServerOptions {
  return {
    'grpc.keepalive_permit_without_calls': 1,
    // Channelz bookkeeping costs on every call and nothing here reads it.
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
  };
}

/**
 * The http2 servers grpc-js made for its bound addresses. The field is private (grpc-js
 * 1.14 offers no hook on connections), so its absence after an upgrade fails the start
 * instead of silently serving without the connection limits.
 */
function http2Servers(server: grpc.Server): Http2Listener[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    throw new Error('grpc-js has no http2Servers map: connection limits cannot be applied');
  }
  return [...(servers.keys() as Iterable<Http2Listener>)];
}

/**
 * The grpc-js server: QuotaService, AdminService, grpc.health.v1.Health and server reflection
 * (v1 and v1alpha, since grpcurl 1.8 speaks only v1alpha).
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly health: HealthImplementation;
  private serving = false;
  private readonly guard: ConnectionGuard;
  private readonly guarded = new WeakSet<Http2Listener>();

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server(serverOptions(options.limits));
    this.guard = new ConnectionGuard(options.limits, options.logger);
    // A body that does not decode reaches the handler chain and is answered INVALID_ARGUMENT.
    this.server.addService(guardDeserialization(QuotaServiceService), options.quota);
    this.server.addService(guardDeserialization(AdminServiceService), options.admin);
    this.health = new HealthImplementation(
      Object.fromEntries(SERVICES.map((s) => [s, 'NOT_SERVING' as const])),
    );
    this.health.addToServer(this.server);
    addReflection(this.server);
  }

  /** Binds and starts; resolves with the bound port (useful with port 0). */
  listen(
    host: string,
    port: number,
    credentials = grpc.ServerCredentials.createInsecure(),
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${port}`,
        credentials,
        (err, bound) => {
          if (err) return reject(err);
          try {
            // grpc-js calls back once listening, before the event loop accepts a connection.
            for (const s of http2Servers(this.server)) {
              if (!this.guarded.has(s)) this.guard.attach(s);
              this.guarded.add(s);
            }
          } catch (e) {
            this.server.forceShutdown();
            return reject(e as Error);
          }
          resolve(bound);
        },
      );
    });
  }

  /** Health of every service: SERVING only when the caller says the dependencies are fine. */
  setServing(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    for (const s of SERVICES) this.health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
    this.options.logger.info({ serving }, 'health changed');
  }

  /**
   * NOT_SERVING first, so balancers stop sending; then streams end, new calls are refused,
   * in-flight calls drain for up to `graceMs`, and whatever is left is cut.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.setServing(false);
    this.options.onShutdown?.();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.options.logger.warn({ graceMs }, 'grace period over; cutting calls still in flight');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.guard.close();
  }
}
