import { connect } from '@quota-authority/client';
import { CheckLimitRequest } from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { CHECK_LIMIT } from './LightClient.js';
import { caller, closedLoop, measured, Tally } from './measure.js';
import { openLoop } from './openLoop.js';
import { RATE, settle, WARMUP_SECONDS } from './settings.js';
import { startFloorServer, waitServing } from './startServer.js';

const request = (userId: string) => CheckLimitRequest.fromPartial({ userId });

/**
 * The open loop at RATE against the floor server (floorServer.ts: bare grpc-js answering
 * CheckLimit from memory), after a closed-loop warm-up and a settling pause: what the machine
 * and grpc-js alone allowed at that moment.
 */
export async function floorBench(): Promise<void> {
  const server = await startFloorServer();
  const client = connect({ address: server.address, token: server.token, deadlineMs: 10_000 });
  try {
    await waitServing(client);
    const { call, close } = caller(
      server.address,
      CHECK_LIMIT,
      (req, metadata, callback) => client.raw.quota.checkLimit(req, metadata, callback),
      server.token,
    );
    try {
      await closedLoop(
        new Tally('warm-up'),
        (i) => call(request(`warm-${i % 10_000}`)),
        WARMUP_SECONDS,
      );
      await settle();
      await measured(server.child.pid, () =>
        openLoop(call, `floor: grpc-js from memory, ${RATE}/s`, (n) =>
          request(`open-${n % 10_000}`),
        ),
      );
    } finally {
      close();
    }
  } finally {
    client.close();
    await server.stop();
  }
}
