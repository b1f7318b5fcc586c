// Reads a few top-level fields of a JSON object without parsing the rest of it. A provider's
// answer is relayed byte for byte; Keyport only needs its `model` and `usage`, and `JSON.parse` of
// the whole body (every choice, every embedding vector) was a measurable share of a gateway call.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** A field name to look for, as the bytes it is written with. */
export type FieldName = { name: string; bytes: Buffer };

export function fieldName(name: string): FieldName {
  return { name, bytes: Buffer.from(name, "utf8") };
}

/**
 * The values of the wanted top-level fields of the JSON object in `body`, each parsed on its own;
 * a field that is absent, or whose value is not valid JSON, is left out. `undefined` when the body
 * is not a JSON object (its members cannot be told apart). Nested fields of the same name never
 * match, and a repeated name takes its last value, as with `JSON.parse`. The rest of the body is
 * stepped over, not validated.
 */
export function readTopLevelFields(body: Buffer, wanted: readonly FieldName[]): Record<string, unknown> | undefined {
  // Only the wanted names (ours, never the body's) become keys.
  const found: Record<string, unknown> = {};
  let at = skipSpace(body, 0);
  if (body[at] !== OPEN_BRACE) return undefined;
  at = skipSpace(body, at + 1);
  if (body[at] === CLOSE_BRACE) return found;
  for (;;) {
    if (body[at] !== QUOTE) return undefined;
    const keyEnd = stringEnd(body, at);
    if (keyEnd === -1) return undefined;
    const match = wantedAt(body, at + 1, keyEnd, wanted);
    at = skipSpace(body, keyEnd + 1);
    if (body[at] !== COLON) return undefined;
    const valueStart = skipSpace(body, at + 1);
    const valueEnd = valueEndAt(body, valueStart);
    if (valueEnd === -1) return undefined;
    if (match !== undefined) {
      const value = parseSlice(body, valueStart, valueEnd);
      if (value === undefined) delete found[match];
      else found[match] = value;
    }
    at = skipSpace(body, valueEnd);
    if (body[at] === CLOSE_BRACE) return found;
    if (body[at] !== COMMA) return undefined;
    at = skipSpace(body, at + 1);
  }
}

/**
 * `body`, a JSON object with at least one member that does not have `name`, with `"name": value`
 * added as its last member; every other byte stays as the client wrote it (formatting, and
 * numbers beyond what a JavaScript number holds). `undefined` when the body does not end in `}`.
 */
export function appendTopLevelField(body: Buffer, name: string, value: unknown): Buffer | undefined {
  let end = body.length - 1;
  while (end >= 0 && isSpace(body[end])) end -= 1;
  if (end < 0 || body[end] !== CLOSE_BRACE) return undefined;
  const member = Buffer.from(`,${JSON.stringify(name)}:${JSON.stringify(value)}`, "utf8");
  return Buffer.concat([body.subarray(0, end), member, body.subarray(end)]);
}

/**
 * `body` with the value of its top-level field `name` (its last occurrence) replaced by `value`;
 * every other byte stays as the client wrote it. Only the new value is serialised, so the rest of
 * the body (a long or deeply nested conversation) is never parsed or re-serialised. `undefined`
 * when the body is not a JSON object with that field.
 */
export function replaceTopLevelField(body: Buffer, name: string, value: unknown): Buffer | undefined {
  const field = fieldName(name);
  let found: { start: number; end: number } | undefined;
  let at = skipSpace(body, 0);
  if (body[at] !== OPEN_BRACE) return undefined;
  at = skipSpace(body, at + 1);
  while (body[at] !== CLOSE_BRACE) {
    if (body[at] !== QUOTE) return undefined;
    const keyEnd = stringEnd(body, at);
    if (keyEnd === -1) return undefined;
    const isWanted = wantedAt(body, at + 1, keyEnd, [field]) !== undefined;
    at = skipSpace(body, keyEnd + 1);
    if (body[at] !== COLON) return undefined;
    const valueStart = skipSpace(body, at + 1);
    const valueEnd = valueEndAt(body, valueStart);
    if (valueEnd === -1) return undefined;
    if (isWanted) found = { start: valueStart, end: valueEnd };
    at = skipSpace(body, valueEnd);
    if (body[at] === COMMA) at = skipSpace(body, at + 1);
    else if (body[at] !== CLOSE_BRACE) return undefined;
  }
  if (found === undefined) return undefined;
  return Buffer.concat([body.subarray(0, found.start), Buffer.from(JSON.stringify(value), "utf8"), body.subarray(found.end)]);
}

/** JSON's whitespace: space, line feed, carriage return, tab. */
function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(body: Buffer, from: number): number {
  let at = from;
  while (isSpace(body[at])) at += 1;
  return at;
}

/** The index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(body: Buffer, start: number): number {
  // A plain loop: most strings are short, and a native `indexOf` call costs more than the scan.
  const length = body.length;
  for (let at = start + 1; at < length; at += 1) {
    const byte = body[at];
    if (byte === QUOTE) return at;
    // An escape covers the next byte, whatever it is (`\"` included).
    if (byte === BACKSLASH) at += 1;
  }
  return -1;
}

/** Where the value starting at `start` ends (exclusive), or -1 when it never does. */
function valueEndAt(body: Buffer, start: number): number {
  const first = body[start];
  if (first === undefined) return -1;
  if (first === QUOTE) {
    const end = stringEnd(body, start);
    return end === -1 ? -1 : end + 1;
  }
  if (first === OPEN_BRACE || first === OPEN_BRACKET) return containerEnd(body, start);
  // A number or a literal: up to the next delimiter.
  let at = start;
  for (;;) {
    const byte = body[at];
    if (byte === undefined || byte === COMMA || byte === CLOSE_BRACE || byte === CLOSE_BRACKET || isSpace(byte)) {
      return at === start ? -1 : at;
    }
    at += 1;
  }
}

/** The end (exclusive) of the object or array opening at `start`; strings are stepped over whole. */
function containerEnd(body: Buffer, start: number): number {
  let depth = 0;
  for (let at = start; at < body.length; at += 1) {
    const byte = body[at];
    if (byte === QUOTE) {
      at = stringEnd(body, at);
      if (at === -1) return -1;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth += 1;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth -= 1;
      if (depth === 0) return at + 1;
    }
  }
  return -1;
}

/** The wanted name whose bytes the key between `start` and `end` holds, if any. */
function wantedAt(body: Buffer, start: number, end: number, wanted: readonly FieldName[]): string | undefined {
  const length = end - start;
  for (let at = start; at < end; at += 1) {
    if (body[at] === BACKSLASH) {
      // A key written with escapes is decoded first (rare: providers write plain keys).
      const key = parseSlice(body, start - 1, end + 1);
      return wanted.find((field) => field.name === key)?.name;
    }
  }
  for (const field of wanted) {
    if (field.bytes.length === length && sameBytes(body, start, field.bytes)) return field.name;
  }
  return undefined;
}

function sameBytes(body: Buffer, start: number, expected: Buffer): boolean {
  for (let index = 0; index < expected.length; index += 1) {
    if (body[start + index] !== expected[index]) return false;
  }
  return true;
}

function parseSlice(body: Buffer, start: number, end: number): unknown {
  // A string without escapes or control characters is its bytes between the quotes.
  if (body[start] === QUOTE && isPlainString(body, start + 1, end - 1)) return body.toString("utf8", start + 1, end - 1);
  try {
    return JSON.parse(body.toString("utf8", start, end)) as unknown;
  } catch {
    return undefined;
  }
}

function isPlainString(body: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at += 1) {
    const byte = body[at] as number;
    if (byte === BACKSLASH || byte < 0x20) return false;
  }
  return true;
}
