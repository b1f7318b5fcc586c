import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { AppError } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import { scrubSecretFragments, scrubSecrets } from "../lib/scrub.js";
import type { GatewayAdapter, GatewayEndpoint, PreparedRequest, StreamObserver } from "../providers/gateway-spec.js";
import type { CallFacts } from "./call-record.js";
import type { Cancellation } from "./cancellation.js";
import type { ForwardOutcome } from "./forward.js";
import { relayedResponseHeaders } from "./response-headers.js";
import type { KeySource } from "./upstream-headers.js";
import type { BodySink, UpstreamBody, UpstreamResponse } from "./upstream.js";

/**
 * Sends the provider's answer to the client: error answers whole (scrubbed), streams event by
 * event as they arrive, JSON bodies chunk by chunk. Usage is read on the way through. Returns
 * the promise of a body still on its way, `undefined` when the answer is already sent (no async
 * frame of its own: this runs on every call).
 */
export function relay(
  outcome: ForwardOutcome,
  key: { source: KeySource; secrets: readonly Redacted<string>[] },
  ourHeaders: Record<string, string>,
  requestId: string,
  response: ServerResponse,
  adapter: GatewayAdapter,
  endpoint: GatewayEndpoint,
  prepared: PreparedRequest,
  facts: CallFacts,
  cancellation: Cancellation,
): Promise<void> | undefined {
  // `ourHeaders` belongs to this call alone (made by the proxy for it): completed in place.
  ourHeaders["x-request-id"] = requestId;
  if (outcome.kind === "error") {
    facts.httpStatus = outcome.status;
    facts.status = "error";
    response.writeHead(outcome.status, relayedResponseHeaders(outcome.headers, adapter.responseHeaders, { source: key.source, keepContentLength: false }, ourHeaders));
    markFirstByte(facts);
    response.end(scrubErrorBody(outcome.body, key.secrets));
    return undefined;
  }
  const upstream = outcome.response;
  facts.httpStatus = upstream.status;
  const isStream = String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream");
  const keepContentLength = !isStream && !prepared.hideUsageChunk;
  response.writeHead(upstream.status, relayedResponseHeaders(upstream.headers, adapter.responseHeaders, { source: key.source, keepContentLength }, ourHeaders));
  return isStream ? relayStream(upstream, response, adapter, endpoint, prepared, facts, cancellation) : relayBody(upstream, response, adapter, endpoint, facts);
}

/** Server-sent events go out as they arrive; the observer reads usage on the side. */
async function relayStream(
  upstream: UpstreamResponse,
  response: ServerResponse,
  adapter: GatewayAdapter,
  endpoint: GatewayEndpoint,
  prepared: PreparedRequest,
  facts: CallFacts,
  cancellation: Cancellation,
): Promise<void> {
  facts.streamed = true;
  const observer = adapter.createStreamObserver(endpoint, { hideUsageChunk: prepared.hideUsageChunk });
  const completed = await new Promise<boolean>((resolve) => upstream.body.consume(new StreamPump(upstream.body, response, observer, facts, resolve)));
  if (completed) {
    const tail = observer.flush();
    facts.usage = observer.usage();
    facts.reportedModel = observer.model();
    facts.status = observer.sawError() ? "error" : "ok";
    markFirstByte(facts);
    response.end(tail.length > 0 ? tail : undefined);
    return;
  }
  facts.usage = observer.usage();
  facts.reportedModel = observer.model();
  if (cancellation.aborted) {
    facts.status = "aborted";
    upstream.body.destroy();
    return;
  }
  // The upstream broke mid-stream: end the client's stream with an error event, never a clean end.
  facts.status = "partial";
  markFirstByte(facts);
  response.end(adapter.renderStreamError(new AppError("upstream_error", "The provider connection was interrupted mid-stream.")));
}

/**
 * A JSON answer is read whole, then written in one go (headers and body in one packet) and
 * parsed for usage. These bodies are small; only streams must flow as they arrive.
 */
async function relayBody(
  upstream: UpstreamResponse,
  response: ServerResponse,
  adapter: GatewayAdapter,
  endpoint: GatewayEndpoint,
  facts: CallFacts,
): Promise<void> {
  const body = await new Promise<Buffer | undefined>((resolve) => upstream.body.consume(new BodyCollector(resolve)));
  if (body === undefined) {
    facts.status = "partial";
    response.destroy();
    return;
  }
  markFirstByte(facts);
  response.end(body);
  const { usage, model } = adapter.usageFromResponse(endpoint, body);
  facts.usage = usage;
  facts.reportedModel = model;
  facts.status = upstream.status < 400 ? "ok" : "error";
}

/**
 * Moves a stream's events to the client as they arrive, through the observer, honouring
 * backpressure; resolves true when the body ended, false when it failed or was aborted first.
 * A class, so a call allocates one object instead of a closure per callback.
 */
class StreamPump implements BodySink {
  #waitingForDrain = false;
  readonly #body: UpstreamBody;
  readonly #response: ServerResponse;
  readonly #observer: StreamObserver;
  readonly #facts: CallFacts;
  readonly #done: (completed: boolean) => void;

  constructor(body: UpstreamBody, response: ServerResponse, observer: StreamObserver, facts: CallFacts, done: (completed: boolean) => void) {
    this.#body = body;
    this.#response = response;
    this.#observer = observer;
    this.#facts = facts;
    this.#done = done;
  }

  onData(chunk: Buffer): boolean {
    const out = this.#observer.push(chunk);
    if (out.length === 0) return true;
    markFirstByte(this.#facts);
    if (this.#response.write(out)) return true;
    // Pausing is best effort: a few more chunks may arrive before the pause takes hold.
    if (!this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.#response.once("drain", () => {
        this.#waitingForDrain = false;
        this.#body.resume();
      });
    }
    return false;
  }

  onEnd(): void {
    this.#done(true);
  }

  onError(): void {
    this.#done(false);
  }
}

/** Collects a JSON answer whole; resolves `undefined` when the body failed or was aborted first. */
class BodyCollector implements BodySink {
  #chunks: Buffer[] = [];
  readonly #done: (body: Buffer | undefined) => void;

  constructor(done: (body: Buffer | undefined) => void) {
    this.#done = done;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  onEnd(): void {
    const chunks = this.#chunks;
    this.#done(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks));
  }

  onError(): void {
    this.#done(undefined);
  }
}

function markFirstByte(facts: CallFacts): void {
  if (facts.ttfbMs === null) facts.ttfbMs = Math.round(performance.now() - facts.startedAtMs);
}

/**
 * A provider error body on its way to the client, with anything key-like removed: OpenAI's 401
 * quotes a fragment of the key, which for the platform key must not reach end users, and a proxy
 * in between may quote any part of it. Every run of 16 characters of the key used or of a
 * platform key goes, then whatever looks like a key.
 */
function scrubErrorBody(body: Buffer, secrets: readonly Redacted<string>[]): Buffer {
  const text = body.toString("utf8");
  const plain = secrets.map((secret) => secret.reveal());
  const scrubbed = scrubSecrets(scrubSecretFragments(text, plain), plain);
  return scrubbed === text ? body : Buffer.from(scrubbed, "utf8");
}
