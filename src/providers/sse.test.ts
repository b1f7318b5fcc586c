import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createSseSplitter, readSseEvent, readSseDataBytes, readSseEventName } from "./sse.js";
import type { SsePiece } from "./sse.js";

// Stream fixtures are the raw bytes an upstream sent, blank lines included.
function streamFixture(path: string): Buffer {
  return readFileSync(new URL(path, import.meta.url));
}

const FIXTURES = {
  "openai chat": streamFixture("./openai/__fixtures__/chat-stream.chunks.txt"),
  "openai responses": streamFixture("./openai/__fixtures__/responses-stream.chunks.txt"),
  "anthropic messages": streamFixture("./anthropic/__fixtures__/messages-stream.chunks.txt"),
};

function toCrlf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString("utf8").replace(/\n/g, "\r\n"));
}

/** Feeds the chunks and returns the pieces, the flushed rest, and the whole events as text. */
function split(chunks: readonly Buffer[], maxEventBytes?: number) {
  const splitter = createSseSplitter(maxEventBytes === undefined ? {} : { maxEventBytes });
  const pieces: SsePiece[] = chunks.flatMap((chunk) => splitter.push(chunk));
  const rest = splitter.flush();
  const events = pieces.filter((piece) => piece.isWholeEvent).map((piece) => piece.bytes.toString("utf8"));
  return { pieces, rest, events, output: Buffer.concat([...pieces.map((piece) => piece.bytes), rest]) };
}

/** Deterministic pseudo-random generator (mulberry32), so a failing split can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

function randomChunks(bytes: Buffer, random: () => number, maxChunk = 40): Buffer[] {
  const chunks: Buffer[] = [];
  let position = 0;
  while (position < bytes.length) {
    const size = 1 + Math.floor(random() * maxChunk);
    chunks.push(bytes.subarray(position, position + size));
    position += size;
  }
  return chunks;
}

describe("createSseSplitter", () => {
  for (const [name, lf] of Object.entries(FIXTURES)) {
    for (const [ending, bytes] of [
      ["LF", lf],
      ["CRLF", toCrlf(lf)],
    ] as const) {
      const reference = split([bytes]);

      it(`splits the ${name} stream (${ending}) into whole events ending at blank lines`, () => {
        const separator = ending === "LF" ? "\n\n" : "\r\n\r\n";
        const expected = bytes
          .toString("utf8")
          .split(separator)
          .filter((event) => event !== "")
          .map((event) => `${event}${separator}`);
        expect(reference.events).toEqual(expected);
        expect(reference.rest.length).toBe(0);
      });

      it(`gives the same events for the ${name} stream (${ending}) split at every byte offset`, () => {
        for (let offset = 0; offset <= bytes.length; offset += 1) {
          const result = split([bytes.subarray(0, offset), bytes.subarray(offset)]);
          expect(result.events, `split at ${offset}`).toEqual(reference.events);
          expect(result.output.equals(bytes), `split at ${offset}`).toBe(true);
        }
      });

      it(`gives the same events for the ${name} stream (${ending}) in one-byte and random chunks`, () => {
        const oneByte = split(Array.from(bytes, (_, index) => bytes.subarray(index, index + 1)));
        expect(oneByte.events).toEqual(reference.events);
        const random = seededRandom(bytes.length);
        for (let round = 0; round < 50; round += 1) {
          const result = split(randomChunks(bytes, random));
          expect(result.events, `round ${round}`).toEqual(reference.events);
          expect(result.output.equals(bytes), `round ${round}`).toBe(true);
        }
      });
    }
  }

  it.each([
    ["LF | LF", ["data: a\n", "\ndata: b\n\n"]],
    ["CRLF CR | LF", ["data: a\r\n\r", "\ndata: b\r\n\r\n"]],
    ["CRLF | CRLF", ["data: a\r\n", "\r\ndata: b\r\n\r\n"]],
    ["LF CR | LF", ["data: a\n\r", "\ndata: b\n\n"]],
    ["LF | CR | LF", ["data: a\n", "\r", "\ndata: b\n\n"]],
  ])("finds a blank line split across chunks (%s)", (_name, parts) => {
    const { events, rest } = split(parts.map((part) => Buffer.from(part)));
    expect(events.map((event) => readSseEvent(Buffer.from(event)).data)).toEqual(["a", "b"]);
    expect(rest.length).toBe(0);
  });

  it("does not take a lone CR for a line ending", () => {
    const { events, rest } = split([Buffer.from("data: a\r\rdata: b\n\n")]);
    expect(events).toEqual(["data: a\r\rdata: b\n\n"]);
    expect(rest.length).toBe(0);
  });

  it("returns events inside one chunk as views of it, not copies", () => {
    const chunk = Buffer.from("data: 1\n\ndata: 2\n\n");
    const pieces = createSseSplitter().push(chunk);
    expect(pieces).toHaveLength(2);
    for (const piece of pieces) expect(piece.bytes.buffer).toBe(chunk.buffer);
  });

  it("holds an unfinished event until it ends, and flush returns it at the end of the stream", () => {
    const splitter = createSseSplitter();
    expect(splitter.push(Buffer.from("data: 1\n\ndata: 2"))).toHaveLength(1);
    expect(splitter.heldBytes()).toBe("data: 2".length);
    expect(splitter.push(Buffer.from(" and more\n")).length).toBe(0);
    expect(splitter.flush().toString()).toBe("data: 2 and more\n");
    expect(splitter.heldBytes()).toBe(0);
    expect(splitter.flush().length).toBe(0);
  });

  it("keeps a multi-byte character split across chunks intact", () => {
    const bytes = Buffer.from("data: 🎉 日本\n\n");
    const { events } = split([bytes.subarray(0, 8), bytes.subarray(8, 13), bytes.subarray(13)]);
    expect(events).toEqual(["data: 🎉 日本\n\n"]);
  });

  it("passes an event over the cap on as fragments, then splits normally again", () => {
    const big = `data: ${"x".repeat(100)}\n\n`;
    const bytes = Buffer.from(`data: small\n\n${big}data: after\n\n`);
    const result = split(randomChunks(bytes, seededRandom(7), 16), 32);
    expect(result.output.equals(bytes)).toBe(true);
    expect(result.events).toEqual(["data: small\n\n", "data: after\n\n"]);
    const fragments = result.pieces.filter((piece) => !piece.isWholeEvent);
    expect(Buffer.concat(fragments.map((piece) => piece.bytes)).toString()).toBe(big);
    expect(Math.max(...result.pieces.map((piece) => piece.bytes.length))).toBeLessThanOrEqual(32 + 16);
  });
});

describe("readSseEvent", () => {
  it.each([
    ["an Anthropic event", "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "message_stop", '{"type":"message_stop"}'],
    ["a data-only event", "data: [DONE]\n\n", undefined, "[DONE]"],
    ["CRLF lines", "event: ping\r\ndata: {}\r\n\r\n", "ping", "{}"],
    ["several data lines", "data: one\ndata:two\ndata:  three\n\n", undefined, "one\ntwo\n three"],
    ["a comment", ": keep-alive\n\n", undefined, undefined],
    ["multi-byte text", "data: Grüße 🎉\n\n", undefined, "Grüße 🎉"],
    ["a field without a value", "data\nevent: x\n\n", "x", ""],
  ])("reads %s", (_name, text, name, data) => {
    expect(readSseEvent(Buffer.from(text))).toEqual({ name, data });
  });
});

describe("readSseEventName", () => {
  it.each([
    ["event: message_delta\ndata: {}\n\n", "message_delta"],
    ["event:error\r\ndata: {}\r\n\r\n", "error"],
    ["data: {}\nevent: late\n\n", "late"],
    ["data: {\"text\":\"event: no\"}\n\n", undefined],
    ["data: [DONE]\n\n", undefined],
    ["event: last", "last"],
  ])("reads the name of %j", (text, name) => {
    expect(readSseEventName(Buffer.from(text))).toBe(name);
  });
});

describe("readSseDataBytes", () => {
  const read = (text: string) => readSseDataBytes(Buffer.from(text, "utf8"))?.toString("utf8");

  it("is the one data line's value, as a view of the event's bytes", () => {
    const event = Buffer.from('event: message_delta\ndata: {"usage":{"output_tokens":3}}\n\n');
    const data = readSseDataBytes(event);
    expect(data?.toString()).toBe('{"usage":{"output_tokens":3}}');
    expect(data?.buffer).toBe(event.buffer);
  });

  it("reads CRLF lines, a value without the optional space, and an empty value", () => {
    expect(read('data: {"a":1}\r\n\r\n')).toBe('{"a":1}');
    expect(read("data:[DONE]\n\n")).toBe("[DONE]");
    expect(read("data:\n\n")).toBe("");
    expect(read("data\n\n")).toBe("");
  });

  it("skips comments and other fields, and joins several data lines with a newline, as readSseEvent does", () => {
    expect(read(': keep-alive\nid: 7\ndata: {"a":1}\n\n')).toBe('{"a":1}');
    const several = 'event: x\ndata: {"a":\ndata: 1}\n\n';
    expect(read(several)).toBe(readSseEvent(Buffer.from(several)).data);
  });

  it("is undefined for an event without data", () => {
    expect(read("event: ping\n\n")).toBeUndefined();
    expect(read(": comment\n\n")).toBeUndefined();
    expect(read("datum: 1\n\n")).toBeUndefined();
  });
});
