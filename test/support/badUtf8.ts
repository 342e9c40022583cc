import { BinaryWriter } from '@bufbuild/protobuf/wire';

/**
 * A protobuf body whose string field number `field` holds bytes that are not UTF-8: appended to
 * a valid body, it overrides that field (the last occurrence wins).
 */
export const badUtf8 = (field: number): Buffer =>
  Buffer.from(
    new BinaryWriter()
      .uint32((field << 3) | 2)
      .bytes(Uint8Array.from([0x61, 0xff]))
      .finish(),
  );
