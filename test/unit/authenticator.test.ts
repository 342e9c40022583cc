import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/auth/Authenticator.js';
import type { TokenStore } from '../../src/auth/ports.js';
import { TokenAdmin } from '../../src/auth/TokenAdmin.js';
import { hashToken, newToken, tokenHashKey } from '../../src/auth/tokenSecret.js';
import type { Role, TokenGrant, TokenInfo } from '../../src/auth/types.js';
import { ValidationError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

/** Tokens in memory; counts the lookups of single hashes, which may be held back. */
class MemoryStore implements TokenStore {
  readonly rows: (TokenGrant & { name: string })[] = [];
  lookups = 0;
  used: number[] = [];
  /** While set, findGrant waits for it. */
  hold: Promise<void> | undefined;

  add(token: string, role: Role): number {
    const id = this.rows.length + 1;
    this.rows.push({ id, hash: hashToken(token), role, revoked: false, name: `t${id}` });
    return id;
  }
  async grants() {
    return this.rows.map((r) => ({ ...r }));
  }
  /** Reads the row when called, answers once `hold` resolves. */
  async findGrant(hash: Buffer) {
    this.lookups++;
    const row = this.rows.find((r) => r.hash.equals(hash));
    const answer = row && { ...row };
    await this.hold;
    return answer;
  }
  async create(name: string, role: Role, hash: Buffer): Promise<TokenInfo> {
    const id = this.rows.length + 1;
    this.rows.push({ id, hash, role, revoked: false, name });
    return this.info(id);
  }
  async list() {
    return this.rows.map((r) => this.info(r.id));
  }
  async revoke(id: number) {
    const row = this.rows.find((r) => r.id === id)!;
    Object.assign(row, { revoked: true });
    return this.info(id);
  }
  async markUsed(ids: readonly number[]) {
    this.used.push(...ids);
  }
  async ensureAdmin() {
    return { created: false, revoked: false };
  }
  async createAdminIfNone() {
    return false;
  }
  private info(id: number): TokenInfo {
    const r = this.rows.find((x) => x.id === id)!;
    const at = new Date(0);
    return {
      id,
      name: r.name,
      role: r.role,
      createdAt: at,
      lastUsedAt: null,
      revokedAt: r.revoked ? at : null,
    };
  }
}

function setup(options: { now?: () => number } = {}) {
  const store = new MemoryStore();
  const auth = new Authenticator(store, silentLogger(), {
    maxLookups: 2,
    unknownTtlMs: 1000,
    ...options,
  });
  return { store, auth };
}

describe('Authenticator', () => {
  it('admits a role and every role above it, and refuses the ones below', async () => {
    const { store, auth } = setup();
    const viewer = newToken();
    store.add(viewer, 'viewer');
    await auth.reload();
    expect(auth.check(viewer, 'client')).toEqual({ ok: true, tokenId: 1 });
    expect(auth.check(viewer, 'viewer')).toEqual({ ok: true, tokenId: 1 });
    expect(auth.check(viewer, 'admin')).toEqual({ ok: false, reason: 'forbidden' });
    expect(auth.check(undefined, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(auth.check('', 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(store.lookups).toBe(0);
  });

  it('refuses a token revoked since the last reload once it reloads, without asking the store per call', async () => {
    const { store, auth } = setup();
    const token = newToken();
    const id = store.add(token, 'client');
    await auth.reload();
    expect(auth.check(token, 'client')).toMatchObject({ ok: true });
    await store.revoke(id);
    await auth.reload();
    expect(auth.check(token, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(store.lookups).toBe(0);
  });

  it('asks the store once for a token made since the last reload, and keeps the answer', async () => {
    const { store, auth } = setup();
    await auth.reload();
    const token = newToken();
    store.add(token, 'admin');
    expect(await auth.check(token, 'admin')).toMatchObject({ ok: true });
    expect(auth.check(token, 'admin')).toMatchObject({ ok: true });
    expect(store.lookups).toBe(1);
  });

  it('refuses an unknown token without asking the store again until the answer expires', async () => {
    let now = 0;
    const { store, auth } = setup({ now: () => now });
    await auth.reload();
    const unknown = newToken();
    expect(await auth.check(unknown, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(auth.check(unknown, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(store.lookups).toBe(1);
    now = 1001;
    expect(await auth.check(unknown, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(store.lookups).toBe(2);
  });

  it('bounds the lookups in flight: one per hash, and past the bound a call is refused at once', async () => {
    const { store, auth } = setup();
    await auth.reload();
    let release = () => undefined as void;
    store.hold = new Promise<void>((r) => (release = r));
    const [a, b, c] = [newToken(), newToken(), newToken()];
    const pending = [auth.check(a, 'client'), auth.check(a, 'client'), auth.check(b, 'client')];
    expect(auth.check(c, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(store.lookups).toBe(2);
    release();
    expect(await Promise.all(pending)).toEqual(
      Array(3).fill({ ok: false, reason: 'unauthenticated' }),
    );
  });

  it('does not keep a lookup answer that a reload started meanwhile may have overtaken', async () => {
    const { store, auth } = setup();
    await auth.reload();
    const token = newToken();
    const id = store.add(token, 'client');
    let release = () => undefined as void;
    store.hold = new Promise<void>((r) => (release = r));
    // The lookup reads the token as valid; it is revoked, and a reload sees that, before the
    // lookup's answer arrives.
    const found = auth.check(token, 'client');
    await store.revoke(id);
    await auth.reload();
    release();
    expect(await found).toEqual({ ok: true, tokenId: id });
    expect(auth.check(token, 'client')).toEqual({ ok: false, reason: 'unauthenticated' });
  });

  it('writes the tokens used since the last flush once each, and again after a failed write', async () => {
    const { store, auth } = setup();
    const [a, b] = [newToken(), newToken()];
    store.add(a, 'client');
    store.add(b, 'client');
    await auth.reload();
    for (let i = 0; i < 5; i++) auth.check(a, 'client');
    auth.check(b, 'admin');
    const markUsed = store.markUsed.bind(store);
    store.markUsed = async () => {
      throw new Error('down');
    };
    await expect(auth.flushUsage()).rejects.toThrow('down');
    store.markUsed = markUsed;
    expect(await auth.flushUsage()).toBe(2);
    expect(store.used.sort()).toEqual([1, 2]);
    expect(await auth.flushUsage()).toBe(0);
  });
});

describe('TokenAdmin', () => {
  it('stores only the hash of a token it makes, and validates names and ids', async () => {
    const store = new MemoryStore();
    let changes = 0;
    const admin = new TokenAdmin(store, async () => void changes++);
    const { token, info } = await admin.create('ci', 'client');
    expect(token).toMatch(/^qa_[A-Za-z0-9_-]{43}$/);
    expect(store.rows[0]!.hash).toEqual(hashToken(token));
    expect(JSON.stringify(store.rows)).not.toContain(token.slice(3));
    expect(info).toMatchObject({ id: 1, name: 'ci', role: 'client' });
    expect(changes).toBe(1);
    await expect(admin.create('', 'client')).rejects.toBeInstanceOf(ValidationError);
    await expect(admin.create('a\nb', 'client')).rejects.toBeInstanceOf(ValidationError);
    await expect(admin.create('x'.repeat(257), 'client')).rejects.toBeInstanceOf(ValidationError);
    await expect(admin.revoke(0)).rejects.toBeInstanceOf(ValidationError);
    await expect(admin.revoke(1.5)).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('token hashes', () => {
  it('index the copy by the base64 of the stored SHA-256', () => {
    const token = newToken();
    expect(tokenHashKey(token)).toBe(hashToken(token).toString('base64'));
  });
});
