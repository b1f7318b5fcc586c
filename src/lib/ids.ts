import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

function encodeBase32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export type IdPrefix = "key" | "evt" | "req" | "use" | "ps";

/**
 * Prefixed, time-sortable ids: `key_` + 48-bit millisecond time + 80 random bits, base32.
 * Sorting ids as strings sorts them by creation time (used for cursor pagination).
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(now, 0, 6);
  takeRandom(bytes, 6, 10);
  return `${prefix}_${encodeBase32(bytes)}`;
}

/**
 * Random bytes drawn from a pool refilled 4 KiB at a time: every gateway call makes two ids, and
 * one `randomBytes` call per id is a measurable share of the hot path. Ids are not secrets; the
 * pool only saves system calls.
 */
const POOL_SIZE = 4096;
const pool = { bytes: Buffer.alloc(0), offset: 0 };

function takeRandom(target: Buffer, start: number, length: number): void {
  if (pool.offset + length > pool.bytes.length) {
    pool.bytes = randomBytes(POOL_SIZE);
    pool.offset = 0;
  }
  pool.bytes.copy(target, start, pool.offset, pool.offset + length);
  pool.offset += length;
}
