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

/** Names health answers for: the whole server ("") and each service. */
const SERVICES = ['', QUOTA_SERVICE, ADMIN_SERVICE];

export interface GrpcServerOptions {
  readonly logger: Logger;
  /** Every method of each service: a missing one fails to compile. */
  readonly quota: QuotaServiceServer;
  readonly admin: AdminServiceServer;
  /** Called when shutdown starts, before draining: ends server streams so they do not hold it. */
  readonly onShutdown?: () => void;
}

/** The grpc-js server's options; the bench's floor server uses them too. */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_permit_without_calls': 1,
  // Channelz bookkeeping costs on every call and nothing here reads it.
  'grpc.enable_channelz': 0,
  'grpc.max_receive_message_length': 1024 * 1024,
};

/**
 * The grpc-js server: QuotaService, AdminService, grpc.health.v1.Health and server reflection
 * (v1 and v1alpha, since grpcurl 1.8 speaks only v1alpha).
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly health: HealthImplementation;
  private serving = false;

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server(SERVER_OPTIONS);
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
          if (err) reject(err);
          else resolve(bound);
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
  }
}
