/**
 * Entry of the child process behind ProcessLoadSampler. systeminformation reads some figures by
 * running commands (df, lsblk, cat), several per sample; spawned from the server, each fork
 * copied the server's page tables and made its heap copy-on-write, which stalled calls by 5–10 ms
 * every second (measured). Spawned from this small process, they cost the server nothing.
 */
import { SystemLoadSampler } from './SystemLoadSampler.js';

const sampler = new SystemLoadSampler(process.argv[2] ?? process.cwd());

process.on('message', (id: number) => {
  sampler.sample().then(
    (figures) => process.send?.({ id, figures }),
    (err: unknown) => process.send?.({ id, error: String(err) }),
  );
});
// The server ends this process by closing the channel, also when the server itself dies; a
// Ctrl-C reaches the whole process group, and the server decides when sampling stops.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
