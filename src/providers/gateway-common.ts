// Pieces both gateway adapters share, so they are written once; nothing here knows a provider.
import { AppError, errorCodes } from "../lib/errors.js";
import { isRecord, stringField } from "../lib/json-values.js";
import type { Redacted } from "../lib/redacted.js";
import { NO_USAGE, type Usage } from "../lib/usage.js";
import type { PreparedRequest, ProviderErrorResponse, StreamObserver } from "./spec.js";
import { type FieldName, fieldName, readTopLevelFields } from "./json-fields.js";
import { createSseSplitter, readSseDataBytes } from "./sse.js";

export { isRecord, stringField };

const EMPTY = Buffer.alloc(0);
const OPEN_BRACE = 0x7b;
/** Visible ASCII only: anything else in a header makes the HTTP client throw an error quoting the value. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;



/** What a GET endpoint sends upstream: no body, nothing to read from one. */
export const NO_BODY: PreparedRequest = Object.freeze({ model: undefined, stream: false, body: undefined, hideUsageChunk: false });

/** The usage of an answer that has none (a model list). */
export function noUsageAnswer(): { usage: Usage; model: string | undefined } {
  return { usage: NO_USAGE, model: undefined };
}

/** An observer for a stream that carries no usage Keyport reads: passes every byte, learns nothing. */
export function plainStreamObserver(): StreamObserver {
  return createSseObserver(
    { inspect: () => "keep", usage: () => NO_USAGE, model: () => undefined, sawError: () => false, outputDeltas: () => 0 },
    { isFiltering: false },
  );
}

/** A token count as the provider reported it; anything but a whole number ≥ 0 counts as "not said". */
export function tokenCount(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** Whether a parsed JSON value nests objects or arrays more than `maxDepth` levels (checked without recursion). */
export function isNestedDeeperThan(value: unknown, maxDepth: number): boolean {
  let level: unknown[] = [value];
  for (let depth = 0; level.length > 0; depth += 1) {
    const next: unknown[] = [];
    for (const item of level) {
      if (item === null || typeof item !== "object") continue;
      for (const child of Object.values(item)) next.push(child);
    }
    if (next.length > 0 && depth + 1 > maxDepth) return true;
    level = next;
  }
  return false;
}

/** `JSON.parse` that never throws (its messages quote the input, so they must not travel anyway). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The wanted top-level fields of one whole SSE event's JSON data, or `undefined` (no data,
 * `[DONE]`, not a JSON object). Only those fields are parsed (see `readTopLevelFields`).
 */
export function readEventFields(event: Buffer, wanted: readonly FieldName[]): Record<string, unknown> | undefined {
  const data = readSseDataBytes(event);
  return data === undefined ? undefined : readTopLevelFields(data, wanted);
}

/**
 * Whether `bytes` hold the key `"name":` followed by an object. A cheap byte search that lets the
 * stream observers skip `JSON.parse` for the many events that cannot carry what they look for.
 * A quote inside a JSON string is escaped, so a raw `"name":` is always a key.
 * @param key the key in quotes with its colon, e.g. `Buffer.from('"usage":')`
 */
export function hasObjectField(bytes: Buffer, key: Buffer): boolean {
  let at = bytes.indexOf(key);
  while (at !== -1) {
    let next = at + key.length;
    while (bytes[next] === 0x20 || bytes[next] === 0x09) next += 1;
    if (bytes[next] === OPEN_BRACE) return true;
    at = bytes.indexOf(key, next);
  }
  return false;
}

/** What `prepareRequest` learnt from a JSON body, before any provider-specific change. */
export type JsonRequestBody = {
  /** The top-level fields the gateway reads (`model`, `stream`, `stream_options`), when present. */
  fields: Record<string, unknown>;
  model: string | undefined;
  stream: boolean;
};

/** The request fields the gateway acts on; every other byte goes upstream unread. */
const REQUEST_FIELDS = [fieldName("model"), fieldName("stream"), fieldName("stream_options")];

/**
 * Reads the fields the gateway needs from a POST body that must be a JSON object. Only those
 * fields are parsed: a chat body holds the whole conversation, and parsing all of it on every call
 * cost time and garbage in proportion to its length. A body whose top level is not a JSON object
 * is refused here; anything malformed deeper inside goes to the provider, which refuses it in its
 * own words. Messages never quote the body: it can hold anything the client sent, secrets
 * included.
 */
export function readJsonRequestBody(body: Buffer | undefined): JsonRequestBody | AppError {
  if (body === undefined || body.length === 0) {
    return new AppError("invalid_request", "The request needs a JSON object body.");
  }
  const fields = readTopLevelFields(body, REQUEST_FIELDS);
  if (fields === undefined) return new AppError("invalid_request", "The request body must be a JSON object.");
  return { fields, model: stringField(fields, "model"), stream: fields.stream === true };
}

/**
 * A JSON POST body passed on untouched: its `model`, and `stream` where the endpoint can stream
 * (a stray `stream: true` on one that cannot must not make the gateway expect events).
 */
export function prepareJsonBody(body: Buffer | undefined, options: { canStream: boolean }): PreparedRequest | AppError {
  const request = readJsonRequestBody(body);
  if (request instanceof AppError) return request;
  return { model: request.model, stream: request.stream && options.canStream, body, hideUsageChunk: false };
}

/**
 * The key, ready for a header. Keys were format-checked when stored, but platform keys come from
 * the environment: refuse rather than let the HTTP client throw an error that quotes the value.
 * @throws AppError `internal`, without the key
 */
export function headerValueOfKey(apiKey: Redacted<string>): string {
  const key = apiKey.reveal();
  if (!HEADER_SAFE.test(key)) {
    throw new AppError("internal", "The provider key cannot be sent: it contains characters a header cannot carry.");
  }
  return key;
}

/** The `error` object of a provider error body (OpenAI and Anthropic both nest one), if any. */
export type ProviderErrorFields = { type: string | undefined; code: string | undefined; message: string | undefined };

export function readProviderError(body: Buffer): ProviderErrorFields | undefined {
  const json = body.length === 0 ? undefined : parseJson(body.toString("utf8"));
  if (!isRecord(json) || !isRecord(json.error)) return undefined;
  const error = json.error;
  return { type: stringField(error, "type"), code: stringField(error, "code"), message: stringField(error, "message") };
}

/**
 * Wraps a provider-shaped error body in its response. `x-should-retry: false` on a non-retryable
 * 429/5xx (e.g. `budget_exceeded`): both official SDKs obey that header before any status rule,
 * and would otherwise retry a 429 that can only fail again.
 */
export function providerErrorResponse(error: AppError, body: unknown): ProviderErrorResponse {
  const { status, retryable } = errorCodes[error.code];
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [name, value] of Object.entries(error.headers)) headers[name.toLowerCase()] = value;
  if (!retryable && (status === 429 || status >= 500)) headers["x-should-retry"] = "false";
  return { status, headers, body: JSON.stringify(body) };
}

/**
 * An SSE event that ends a stream which broke after its first bytes went out. It starts with a
 * blank line: when the break fell inside an event, that closes the partial event on its own
 * (instead of gluing the error's `data:` line onto it); after a whole event it is an empty line,
 * which SSE clients ignore.
 */
export function streamErrorEvent(payload: unknown, eventName?: string): Buffer {
  const nameLine = eventName === undefined ? "" : `event: ${eventName}\n`;
  return Buffer.from(`\n\n${nameLine}data: ${JSON.stringify(payload)}\n\n`);
}

/** The provider-specific half of a stream observer: reads whole events, keeps what it learnt. */
export type SseInspector = {
  /** Looks at one whole event; `drop` removes it from the stream (honoured only when filtering). */
  inspect(event: Buffer): "keep" | "drop";
  usage(): Usage;
  model(): string | undefined;
  sawError(): boolean;
  /** Events seen that carried generated output (see `StreamObserver.outputDeltas`). */
  outputDeltas(): number;
};

/**
 * Turns an inspector into a {@link StreamObserver}. Without filtering, `push` returns the chunk it
 * was given (no copy) and only keeps an unfinished trailing event on the side. With filtering it
 * forwards whole events only, minus the dropped ones, holding back an unfinished one until it
 * ends; a chunk made of whole events that are all kept is still returned as it is.
 */
export function createSseObserver(inspector: SseInspector, options: { isFiltering: boolean }): StreamObserver {
  const splitter = createSseSplitter();
  // Written out, not spread from a shared object: one observer per streamed call.
  const usage = () => inspector.usage();
  const model = () => inspector.model();
  const sawError = () => inspector.sawError();
  const outputDeltas = () => inspector.outputDeltas();
  if (!options.isFiltering) {
    return {
      usage,
      model,
      sawError,
      outputDeltas,
      push(chunk) {
        for (const piece of splitter.push(chunk)) {
          if (piece.isWholeEvent) inspector.inspect(piece.bytes);
        }
        return chunk;
      },
      flush() {
        // A last event without its blank line: clients drop it, but the usage in it was billed.
        const rest = splitter.flush();
        if (rest.length > 0) inspector.inspect(rest);
        return EMPTY;
      },
    };
  }
  return {
    usage,
    model,
    sawError,
    outputDeltas,
    push(chunk) {
      const wasHolding = splitter.heldBytes() > 0;
      const pieces = splitter.push(chunk);
      const kept = pieces.filter((piece) => !piece.isWholeEvent || inspector.inspect(piece.bytes) === "keep");
      if (!wasHolding && splitter.heldBytes() === 0 && kept.length === pieces.length) return chunk;
      return Buffer.concat(kept.map((piece) => piece.bytes));
    },
    flush() {
      const rest = splitter.flush();
      if (rest.length === 0 || inspector.inspect(rest) === "drop") return EMPTY;
      return rest;
    },
  };
}
