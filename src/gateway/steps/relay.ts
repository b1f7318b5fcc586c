import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { AppError } from "../../lib/errors.js";
import type { Redacted } from "../../lib/redacted.js";
import { scrubSecretFragments, scrubSecrets } from "../../lib/scrub.js";
import type { CuttableStream, StreamRegistry } from "../../lib/lifecycle.js";
import { cutStreamUsage, estimateTokensOfBytes, NO_USAGE } from "../../lib/usage.js";
import type { StreamObserver } from "../../providers/spec.js";
import { plainStreamObserver } from "../../providers/gateway-common.js";
import type { BodySink, UpstreamBody, UpstreamResponse } from "../../providers/upstream-client.js";
import type { CallContext, CallOutcome, Credential } from "../call-context.js";
import type { ForwardResult } from "./forward.js";
import { relayedResponseHeaders } from "./response-headers.js";

export type RelayDeps = {
  /** Every configured platform key: scrubbed out of relayed error bodies whichever key served. */
  platformSecrets: readonly Redacted<string>[];
  /** Running streams, so a shutdown can end those still going at its drain deadline. */
  streams: StreamRegistry;
};

/** The provider's answers the relay sends on (a call without any answer is a failure, not a relay). */
export type ProviderAnswer = Exclude<ForwardResult, { kind: "failed" }>;

/**
 * Sends the provider's answer to the client: an error answer whole (scrubbed), a stream event by
 * event as it arrives, a JSON body in one go. Usage is read on the way through. Returns how the
 * call ended.
 */
export async function relay(call: Readonly<CallContext>, answer: ProviderAnswer, credential: Credential, deps: RelayDeps): Promise<CallOutcome> {
  const { response, adapter } = call;
  const ours = ourHeaders(call, credential);
  if (answer.kind === "error") {
    response.writeHead(answer.status, relayedResponseHeaders(answer.headers, adapter.responseHeaders, { source: credential.source, keepContentLength: false }, ours));
    response.end(scrubErrorBody(answer.body, [credential.apiKey, ...deps.platformSecrets]));
    return { status: "error", httpStatus: answer.status, usage: NO_USAGE, reportedModel: undefined, streamed: false, firstByteAtMs: performance.now() };
  }
  const upstream = answer.response;
  const isStream = String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream");
  const keepContentLength = !isStream && call.prepared?.hideUsageChunk !== true;
  response.writeHead(upstream.status, relayedResponseHeaders(upstream.headers, adapter.responseHeaders, { source: credential.source, keepContentLength }, ours));
  return isStream ? relayStream(call, upstream, deps.streams) : relayBody(call, upstream);
}

/** Keyport's own response headers: which key served, the call's id, and the platform rate limits. */
function ourHeaders(call: Readonly<CallContext>, credential: Credential): Record<string, string> {
  return { ...call.limitHeaders, "x-keyport-key-source": credential.source, "x-request-id": call.request.id };
}

/**
 * Server-sent events go out as they arrive; the observer reads usage on the side. A body in an
 * encoding the upstream client could not decode passes through unobserved (usage unknown). A
 * stream that does not end on its own (client gone, provider cut, shutdown deadline) is charged
 * for what was streamed (`cutStreamUsage`).
 */
async function relayStream(call: Readonly<CallContext>, upstream: UpstreamResponse, streams: StreamRegistry): Promise<CallOutcome> {
  const { response, cancellation } = call;
  const isOpaque = upstream.headers["content-encoding"] !== undefined;
  const observer = isOpaque ? plainStreamObserver() : call.endpoint.createStreamObserver({ hideUsageChunk: call.prepared?.hideUsageChunk === true });
  const pump = new StreamPump(upstream.body, response, observer);
  const completed = await new Promise<boolean>((resolve) => {
    pump.start(resolve);
    streams.trackStream(pump);
  });
  streams.untrackStream(pump);
  const outcome: CallOutcome = {
    status: "ok",
    httpStatus: upstream.status,
    usage: observer.usage(),
    reportedModel: observer.model(),
    streamed: true,
    firstByteAtMs: pump.firstByteAtMs,
  };
  if (completed) {
    const tail = observer.flush();
    // The usage of a last event without its blank line is read by the flush.
    outcome.usage = observer.usage();
    outcome.reportedModel = observer.model();
    outcome.status = observer.sawError() ? "error" : "ok";
    outcome.firstByteAtMs ??= performance.now();
    response.end(tail.length > 0 ? tail : undefined);
    return outcome;
  }
  outcome.usage = cutStreamUsage(observer.usage(), observer.outputDeltas(), estimateTokensOfBytes(call.prepared?.body?.length ?? 0));
  if (cancellation.aborted) {
    outcome.status = "client_aborted";
    upstream.body.destroy();
    return outcome;
  }
  outcome.firstByteAtMs ??= performance.now();
  if (pump.wasCut) {
    // The shutdown's drain deadline: the provider's own "overloaded" error, so clients retry elsewhere.
    outcome.status = "shutdown_cut";
    upstream.body.destroy();
    response.end(call.adapter.renderStreamError(new AppError("shutting_down", "This Keyport instance is shutting down; the stream was cut. Retry the request.")));
    return outcome;
  }
  // The upstream broke mid-stream: end the client's stream with an error event, never a clean end.
  outcome.status = "partial";
  response.end(call.adapter.renderStreamError(new AppError("upstream_error", "The provider connection was interrupted mid-stream.")));
  return outcome;
}

/**
 * A JSON answer is read whole, then written in one go (headers and body in one packet) and
 * parsed for usage. These bodies are small; only streams must flow as they arrive.
 */
async function relayBody(call: Readonly<CallContext>, upstream: UpstreamResponse): Promise<CallOutcome> {
  const { response, cancellation } = call;
  const body = await new Promise<Buffer | undefined>((resolve) => upstream.body.consume(new BodyCollector(resolve)));
  if (body === undefined) {
    response.destroy();
    // The client going away aborts the upstream body too; only a body that broke on its own is `partial`.
    const status = cancellation.aborted ? "client_aborted" : "partial";
    return { status, httpStatus: upstream.status, usage: NO_USAGE, reportedModel: undefined, streamed: false, firstByteAtMs: null };
  }
  const firstByteAtMs = performance.now();
  response.end(body);
  const { usage, model } = call.endpoint.usageFromResponse(body);
  return { status: upstream.status < 400 ? "ok" : "error", httpStatus: upstream.status, usage, reportedModel: model, streamed: false, firstByteAtMs };
}

/**
 * Moves a stream's events to the client as they arrive, through the observer, honouring
 * backpressure; `done(true)` when the body ended, `done(false)` when it failed, was aborted or
 * was cut first (only the first call counts: the promise it resolves settles once). A class, so a call allocates one object instead of a closure per callback.
 */
class StreamPump implements BodySink, CuttableStream {
  firstByteAtMs: number | null = null;
  /** Ended by the shutdown's drain deadline, not by the provider or the client. */
  wasCut = false;
  #waitingForDrain = false;
  #done: (completed: boolean) => void = () => {};
  readonly #body: UpstreamBody;
  readonly #response: ServerResponse;
  readonly #observer: StreamObserver;

  constructor(body: UpstreamBody, response: ServerResponse, observer: StreamObserver) {
    this.#body = body;
    this.#response = response;
    this.#observer = observer;
  }

  start(done: (completed: boolean) => void): void {
    this.#done = done;
    this.#body.consume(this);
  }

  onData(chunk: Buffer): boolean {
    const out = this.#observer.push(chunk);
    if (out.length === 0) return true;
    this.firstByteAtMs ??= performance.now();
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

  cut(): void {
    this.wasCut = true;
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
