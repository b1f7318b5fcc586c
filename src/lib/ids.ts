import { randomBytes } from "node:crypto";

/** Crockford base32, lower case, as character codes. */
const ALPHABET = Buffer.from("0123456789abcdefghjkmnpqrstvwxyz", "latin1");

/** 48-bit time and 80 random bits: 128 bits, 26 base32 characters. */
const ID_BYTES = 16;
const ENCODED_LENGTH = Math.ceil((ID_BYTES * 8) / 5);

export type IdPrefix = "key" | "evt" | "req" | "use" | "ps";

/**
 * Prefixed, time-sortable ids: `key_` + 48-bit millisecond time + 80 random bits, base32.
 * Sorting ids as strings sorts them by creation time (used for cursor pagination).
 *
 * The characters are written into one buffer and decoded once: building the string a character
 * at a time made a string per character, and the gateway makes two ids per call.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  const bytes = Buffer.allocUnsafe(ID_BYTES);
  bytes.writeUIntBE(now, 0, 6);
  if (now === last.time) {
    // Within one millisecond the random part counts up from the previous id's, so ids made in
    // one process sort in the order they were made (an audit trail's events, newest first).
    incrementRandom(last.bytes);
    last.bytes.copy(bytes, 6, 6, ID_BYTES);
  } else {
    takeRandom(bytes, 6, ID_BYTES - 6);
    last.time = now;
  }
  bytes.copy(last.bytes);
  const start = prefix.length + 1;
  const out = Buffer.allocUnsafe(start + ENCODED_LENGTH);
  out.write(prefix, 0, "latin1");
  out[prefix.length] = 0x5f; // "_"
  let bits = 0;
  let value = 0;
  let at = start;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out[at++] = ALPHABET[(value >>> (bits - 5)) & 31] as number;
      bits -= 5;
    }
  }
  if (bits > 0) out[at++] = ALPHABET[(value << (5 - bits)) & 31] as number;
  return out.toString("latin1", 0, at);
}

/** Whether `value` has the shape `newId(prefix)` gives: the prefix, `_`, 26 base32 characters. */
export function isIdOf(prefix: IdPrefix, value: string): boolean {
  return value.length === prefix.length + 1 + ENCODED_LENGTH && value.startsWith(`${prefix}_`) && ID_BODY.test(value.slice(prefix.length + 1));
}

const ID_BODY = /^[0-9a-hjkmnp-tv-z]+$/;

/** Characters after the time's ten: the 78 random bits' rest and the two bits of padding. */
const RANDOM_CHARACTERS = ENCODED_LENGTH - 10;

/**
 * The smallest id `newId(prefix, time)` can give: the time followed by all-zero random bits. Ids
 * of `[start, end)` are exactly those with `newIdLowerBound(p, start) <= id < newIdLowerBound(p, end)`,
 * so a time range becomes a range of the primary key. The 48 time bits and two zero bits fill the
 * first ten characters; the rest is `0`.
 */
export function newIdLowerBound(prefix: IdPrefix, time: number): string {
  if (!Number.isSafeInteger(time) || time < 0 || time >= 2 ** 48) throw new RangeError("time must be a millisecond time in 48 bits");
  // time * 4 is below 2^50 (safe in a double): ten base32 characters, most significant first.
  let value = time * 4;
  let out = "";
  for (let at = 0; at < 10; at += 1) {
    out = String.fromCharCode(ALPHABET[value % 32] as number) + out;
    value = Math.floor(value / 32);
  }
  return `${prefix}_${out}${"0".repeat(RANDOM_CHARACTERS)}`;
}

/** The previous id's time and bytes. */
const last = { time: -1, bytes: Buffer.alloc(ID_BYTES) };

/** Adds one to the 80 random bits; an overflow (one in 2^80 ids) wraps, which only costs the order. */
function incrementRandom(bytes: Buffer): void {
  for (let at = ID_BYTES - 1; at >= 6; at -= 1) {
    const value = (bytes[at] as number) + 1;
    bytes[at] = value & 0xff;
    if (value <= 0xff) return;
  }
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
