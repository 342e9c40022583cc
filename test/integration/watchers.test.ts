import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watch, type Watched } from '../support/loadStreams.js';
import { waitFor } from '../support/waitFor.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

const INTERVAL = 200;
const WATCHERS = 500;
let db: TestDatabase;
let server: TestServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_LOAD_INTERVAL_MS: String(INTERVAL),
    QUOTA_HOST_NAME: 'watched',
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** Samples taken over `ms`, by the process's one sampling loop. */
async function samplesDuring(s: TestServer, ms: number): Promise<number> {
  const before = s.app.loadSamples();
  await new Promise((r) => setTimeout(r, ms));
  return s.app.loadSamples() - before;
}

describe('500 concurrent WatchLoad streams', () => {
  let streams: Watched[] = [];

  it('leave the sampler at one sample per interval', async () => {
    const s = server!;
    await waitFor(() => s.app.loadSamples() >= 2);
    const idle = await samplesDuring(s, 2000);
    streams = Array.from({ length: WATCHERS }, () =>
      watch(
        s.client.quota.watchLoad({
          interval: { seconds: 0, nanos: INTERVAL * 1e6 },
          hosts: [],
        }),
      ),
    );
    await waitFor(() => streams.every((w) => w.messages.length > 0), 10_000);
    expect(s.app.loadWatchers()).toBe(WATCHERS);
    const counts = streams.map((w) => w.messages.length);
    const watched = await samplesDuring(s, 2000);
    // 2 s at 200 ms: 10 samples, whether 0 or 500 streams are open (one of slack for timing).
    expect(idle).toBeGreaterThanOrEqual(8);
    expect(idle).toBeLessThanOrEqual(11);
    expect(watched).toBeGreaterThanOrEqual(8);
    expect(watched).toBeLessThanOrEqual(11);
    // And the streams were served meanwhile: about one snapshot per interval each.
    const received = streams.map((w, i) => w.messages.length - counts[i]!);
    expect(Math.min(...received)).toBeGreaterThanOrEqual(5);
    expect(streams.every((w) => w.messages.every((m) => m.snapshot.host === 'watched'))).toBe(true);
  });

  it('all end cleanly (OK) when the server shuts down, without waiting for the grace period', async () => {
    const s = server!;
    server = undefined;
    const started = Date.now();
    await s.stop();
    // The grace period is 10 s: half of it is far more than ending 500 streams takes (under a
    // second on an idle machine, up to 2 s seen on a loaded one), far less than waiting it out.
    expect(Date.now() - started).toBeLessThan(5000);
    const ends = await Promise.all(streams.map((w) => w.ended));
    expect(ends.filter((e) => e !== null)).toHaveLength(0);
  });
});
