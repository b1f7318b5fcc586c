/**
 * Incremental server-sent-event splitting over raw bytes, for observing provider streams on
 * their way to the client. It works on bytes, never on decoded text, so a chunk may end anywhere
 * (inside a multi-byte UTF-8 character, between `\r` and `\n`) without changing the result.
 *
 * An event ends at a blank line. Lines end in `\n` or `\r\n`; a lone `\r` line ending (allowed
 * by the SSE spec, sent by no provider) is not recognised, so such a stream is simply not split.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */

const LF = 0x0a;
const CR = 0x0d;
const EVENT_FIELD = Buffer.from("event:");
const LINE_EVENT_FIELD = Buffer.from("\nevent:");

/**
 * Default cap on one held-back event: large enough for a Responses API `response.completed`
 * (it repeats the whole output), small enough that an upstream that never ends an event cannot
 * grow memory without bound.
 */
export const DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * A run of stream bytes: a whole event (up to and including its blank line), or a fragment of an
 * event that outgrew the cap and is passed on unread.
 */
export type SsePiece = { bytes: Buffer; isWholeEvent: boolean };

export type SseSplitter = {
  /**
   * Feeds the next chunk. Returns the pieces it completed, in order; the concatenation of every
   * piece returned and the final `flush()` is exactly the input. Whole events that lie inside
   * one chunk are views of it, not copies, and so are the held bytes: a chunk's memory must not
   * be reused after it was pushed (Node streams never do).
   */
  push(chunk: Buffer): SsePiece[];
  /** Bytes of an unfinished event held back so far. */
  heldBytes(): number;
  /** Ends the stream: returns the held bytes of an event the stream never finished. */
  flush(): Buffer;
};

/** Where the bytes before the current chunk stopped, for a blank line split across chunks. */
type Tail = "none" | "after_lf" | "after_lf_cr";

/** Creates a splitter for one stream. `maxEventBytes` defaults to {@link DEFAULT_MAX_EVENT_BYTES}. */
export function createSseSplitter(options: { maxEventBytes?: number } = {}): SseSplitter {
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  let held: Buffer[] = [];
  let heldLength = 0;
  let tail: Tail = "none";
  /** The current event outgrew the cap: its bytes are passed on as fragments until it ends. */
  let isOversized = false;

  function take(part: Buffer): Buffer {
    if (heldLength === 0) return part;
    const bytes = Buffer.concat([...held, part], heldLength + part.length);
    held = [];
    heldLength = 0;
    return bytes;
  }

  return {
    push(chunk) {
      const pieces: SsePiece[] = [];
      if (chunk.length === 0) return pieces;
      let start = 0;
      const endEvent = (end: number) => {
        pieces.push({ bytes: take(chunk.subarray(start, end)), isWholeEvent: !isOversized });
        isOversized = false;
        start = end;
      };

      let position = 0;
      const carried = finishCarriedBlankLine(chunk, tail);
      tail = "none";
      if (carried === "after_lf_cr") {
        tail = carried;
        position = chunk.length;
      } else if (carried > 0) {
        endEvent(carried);
        position = carried;
      }

      while (position < chunk.length) {
        const lf = chunk.indexOf(LF, position);
        if (lf === -1) break;
        const next = lf + 1;
        if (next === chunk.length) {
          tail = "after_lf";
          break;
        }
        if (chunk[next] === LF) {
          endEvent(next + 1);
          position = next + 1;
          continue;
        }
        if (chunk[next] === CR) {
          if (next + 1 === chunk.length) {
            tail = "after_lf_cr";
            break;
          }
          if (chunk[next + 1] === LF) {
            endEvent(next + 2);
            position = next + 2;
            continue;
          }
        }
        position = next;
      }

      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        if (isOversized) {
          pieces.push({ bytes: rest, isWholeEvent: false });
        } else {
          held.push(rest);
          heldLength += rest.length;
          if (heldLength > maxEventBytes) {
            pieces.push({ bytes: take(Buffer.alloc(0)), isWholeEvent: false });
            isOversized = true;
          }
        }
      }
      return pieces;
    },
    heldBytes: () => heldLength,
    flush() {
      const bytes = take(Buffer.alloc(0));
      tail = "none";
      isOversized = false;
      return bytes;
    },
  };
}

/**
 * Completes a blank line whose first line ending closed the previous chunk. Returns the index
 * just past it, 0 when there is none, or `after_lf_cr` when this chunk is a lone `\r` after `\n`.
 */
function finishCarriedBlankLine(chunk: Buffer, tail: Tail): number | "after_lf_cr" {
  if (tail === "after_lf_cr") return chunk[0] === LF ? 1 : 0;
  if (tail !== "after_lf") return 0;
  if (chunk[0] === LF) return 1;
  if (chunk[0] !== CR) return 0;
  if (chunk.length === 1) return "after_lf_cr";
  return chunk[1] === LF ? 2 : 0;
}

/** One event's `event:` name (when it has one) and its `data:` lines joined with `\n`. */
export type SseEvent = { name: string | undefined; data: string | undefined };

/** Reads the fields of one whole event. Comments and unknown fields are ignored. */
export function readSseEvent(bytes: Buffer): SseEvent {
  let name: string | undefined;
  const data: string[] = [];
  for (const line of bytes.toString("utf8").split(/\r\n|\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const rawValue = colon === -1 ? "" : line.slice(colon + 1);
    const value = rawValue.startsWith(" ") ? rawValue.slice(1) : rawValue;
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  return { name, data: data.length === 0 ? undefined : data.join("\n") };
}

const DATA_NAME = Buffer.from("data");
const COLON = 0x3a;

/**
 * The `data:` value of one whole event as bytes, without decoding it: a view of `bytes` when the
 * event has one `data:` line (what providers send), the lines joined with `\n` when it has
 * several, `undefined` when it has none.
 */
export function readSseDataBytes(bytes: Buffer): Buffer | undefined {
  let found: Buffer | undefined;
  let count = 0;
  for (let lineStart = 0; lineStart < bytes.length; ) {
    const newline = bytes.indexOf(LF, lineStart);
    const lineEnd = newline === -1 ? bytes.length : newline;
    const contentEnd = lineEnd > lineStart && bytes[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    // `data:value`, `data: value`, or a bare `data` line (a field without a colon has an empty value).
    if (startsWithBytes(bytes.subarray(lineStart, contentEnd), DATA_NAME)) {
      const afterName = lineStart + DATA_NAME.length;
      if (afterName === contentEnd) {
        count += 1;
        found = bytes.subarray(contentEnd, contentEnd);
      } else if (bytes[afterName] === COLON) {
        count += 1;
        let valueStart = afterName + 1;
        if (valueStart < contentEnd && bytes[valueStart] === 0x20) valueStart += 1;
        found = bytes.subarray(valueStart, contentEnd);
      }
    }
    lineStart = lineEnd + 1;
  }
  if (count <= 1) return found;
  // Several data lines (allowed, sent by no provider): the spec joins them with a newline.
  const { data } = readSseEvent(bytes);
  return data === undefined ? undefined : Buffer.from(data, "utf8");
}

/**
 * The `event:` name of one whole event, without decoding the rest of it: the hot path calls this
 * for every event of an Anthropic stream.
 */
export function readSseEventName(bytes: Buffer): string | undefined {
  let start: number;
  if (startsWithBytes(bytes, EVENT_FIELD)) {
    start = EVENT_FIELD.length;
  } else {
    const at = bytes.indexOf(LINE_EVENT_FIELD);
    if (at === -1) return undefined;
    start = at + LINE_EVENT_FIELD.length;
  }
  const lineEnd = bytes.indexOf(LF, start);
  let end = lineEnd === -1 ? bytes.length : lineEnd;
  if (end > start && bytes[end - 1] === CR) end -= 1;
  if (bytes[start] === 0x20) start += 1;
  return bytes.toString("utf8", start, end);
}

/** Byte-wise `startsWith`, without decoding. */
export function startsWithBytes(bytes: Buffer, prefix: Buffer): boolean {
  if (bytes.length < prefix.length) return false;
  for (let index = 0; index < prefix.length; index += 1) {
    if (bytes[index] !== prefix[index]) return false;
  }
  return true;
}
