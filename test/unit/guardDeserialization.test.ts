import { describe, expect, it } from 'vitest';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ValidationError } from '../../src/errors.js';
import {
  decodedRequest,
  guardDeserialization,
  MalformedRequest,
} from '../../src/grpc/guardDeserialization.js';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckLimitRequest,
  QuotaServiceService,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

const quota = guardDeserialization(QuotaServiceService);
const admin = guardDeserialization(AdminServiceService);

const LEN = 2;
const VARINT = 0;
const tag = (field: number, wire: number) => (field << 3) | wire;
const bytes = (...b: number[]) => Uint8Array.from(b);
const body = (w: BinaryWriter) => Buffer.from(w.finish());

/** The ValidationError a body is delivered as; fails when it decoded. */
function refusal(decoded: unknown): ValidationError {
  expect(decoded).toBeInstanceOf(MalformedRequest);
  expect(() => decodedRequest(decoded)).toThrow(ValidationError);
  return (decoded as MalformedRequest).error;
}

/** UpsertRateLimitRuleRequest{rule{name: "r", limit, window{seconds}}} with raw int64s. */
function upsert(limit: string, seconds: string): Buffer {
  const w = new BinaryWriter().uint32(tag(1, LEN)).fork();
  w.uint32(tag(1, LEN)).string('r');
  w.uint32(tag(4, VARINT)).int64(limit);
  w.uint32(tag(5, LEN)).fork().uint32(tag(1, VARINT)).int64(seconds).join();
  return body(w.join());
}

describe('request deserialization guard', () => {
  it('decodes a valid body as before, non-ASCII and U+FFFD sent as UTF-8 included', () => {
    const sent = CheckLimitRequest.fromPartial({ userId: 'zoë \ufffd 日本', hits: 3 });
    const decoded = quota.checkLimit.requestDeserialize(
      Buffer.from(CheckLimitRequest.encode(sent).finish()),
    );
    expect(decoded).toEqual(sent);
    expect(decodedRequest(decoded)).toBe(decoded);
  });

  it.each([
    ['a lone continuation byte', [0x61, 0x80]],
    ['a cut sequence', [0xc3]],
    ['an overlong NUL', [0xc0, 0x80]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a byte never in UTF-8', [0xff]],
  ])('refuses invalid UTF-8 (%s) naming the field', (_what, raw) => {
    const err = refusal(
      quota.checkLimit.requestDeserialize(
        body(
          new BinaryWriter()
            .uint32(tag(1, LEN))
            .string('10.0.0.1')
            .uint32(tag(2, LEN))
            .bytes(bytes(...raw)),
        ),
      ),
    );
    expect(err.field).toBe('user_id');
    expect(err.reason).toBe('is not valid UTF-8');
  });

  it('names the element of a list', () => {
    const w = new BinaryWriter()
      .uint32(tag(2, LEN))
      .string('a')
      .uint32(tag(2, LEN))
      .bytes(bytes(0xfe));
    expect(refusal(admin.getLoadTrend.requestDeserialize(body(w))).field).toBe('hosts[1]');
  });

  it('refuses an int64 past 2^53 in rule.limit and rule.window.seconds, naming each', () => {
    const limit = refusal(
      admin.upsertRateLimitRule.requestDeserialize(upsert('9007199254740993', '60')),
    );
    expect(limit.field).toBe('rule.limit');
    expect(limit.reason).toMatch(/within ±9007199254740991/);
    const seconds = refusal(
      admin.upsertRateLimitRule.requestDeserialize(upsert('10', '-9223372036854775808')),
    );
    expect(seconds.field).toBe('rule.window.seconds');
    // At the bound it decodes.
    expect(
      admin.upsertRateLimitRule.requestDeserialize(upsert('9007199254740991', '60')),
    ).not.toBeInstanceOf(MalformedRequest);
  });

  it.each(['9223372036854775807', '-9223372036854775808'])(
    'refuses WatchLoad interval.seconds of %s naming it',
    (seconds) => {
      const w = new BinaryWriter()
        .uint32(tag(1, LEN))
        .fork()
        .uint32(tag(1, VARINT))
        .int64(seconds)
        .join();
      expect(refusal(quota.watchLoad.requestDeserialize(body(w))).field).toBe('interval.seconds');
    },
  );

  it('names the field a body is cut short in, or "request" between fields', () => {
    const full = Buffer.from(
      CheckLimitRequest.encode(
        CheckLimitRequest.fromPartial({ ip: '10.0.0.1', userId: 'alice' }),
      ).finish(),
    );
    expect(
      refusal(quota.checkLimit.requestDeserialize(full.subarray(0, full.length - 2))).field,
    ).toBe('user_id');
    // A tag whose varint never ends.
    expect(refusal(quota.checkLimit.requestDeserialize(Buffer.from([0x80]))).field).toBe('request');
    // Wire type 7 does not exist: in field 15 (unknown), and in field 1 (ip).
    expect(refusal(quota.checkLimit.requestDeserialize(Buffer.from([0x7f, 0x00]))).field).toBe(
      'request',
    );
    expect(refusal(quota.checkLimit.requestDeserialize(Buffer.from([0x0f, 0x00]))).field).toBe(
      'ip',
    );
    const cut = body(
      new BinaryWriter().uint32(tag(1, LEN)).fork().uint32(tag(1, LEN)).string('name').join(),
    ).subarray(0, 4);
    expect(refusal(admin.upsertRateLimitRule.requestDeserialize(cut)).field).toMatch(/^rule/);
  });

  it('skips unknown fields as the generated decoder does', () => {
    const w = new BinaryWriter()
      .uint32(tag(99, VARINT))
      .int64('9223372036854775807')
      .uint32(tag(2, LEN))
      .string('bob');
    expect(quota.checkLimit.requestDeserialize(body(w))).toMatchObject({ userId: 'bob' });
  });
});
