import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { Cancellation } from "./cancellation.js";
import { decodedBody } from "./content-decoding.js";

export type UpstreamRequest = {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body: Buffer | undefined;
  cancellation: Cancellation;
};

/** Receives an upstream body chunk by chunk; `onData` returns false to pause until `resume()`. */
export type BodySink = {
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(error: Error): void;
};

/**
 * The upstream body, delivered straight from undici's dispatcher callbacks: no stream object per
 * call (a `Readable` per response is a measurable share of a gateway call's CPU).
 */
export type UpstreamBody = {
  consume(sink: BodySink): void;
  resume(): void;
  destroy(): void;
};

export type UpstreamResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
};

/** Why no response came back. Never carries the library's message: it may quote header values (the key). */
export type UpstreamFailureKind = "timeout" | "connection" | "aborted";

export class UpstreamFailure extends Error {
  readonly kind: UpstreamFailureKind;
  constructor(kind: UpstreamFailureKind) {
    super(`Upstream call failed (${kind})`);
    this.name = "UpstreamFailure";
    this.kind = kind;
  }
}

export type UpstreamTimeouts = {
  /** Until the response headers arrive (a model may think for a while before answering). */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks. */
  bodyTimeoutMs: number;
};

/**
 * One upstream attempt through the pooled dispatcher. Resolves when the response headers
 * arrive; throws only `UpstreamFailure` (no answer at all).
 */
export function callUpstream(dispatcher: Dispatcher, request: UpstreamRequest, timeouts: UpstreamTimeouts): Promise<UpstreamResponse> {
  const { origin, path } = splitUrl(request.url);
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(
      {
        origin,
        path,
        method: request.method,
        headers: request.headers,
        body: request.body ?? null,
        headersTimeout: timeouts.headersTimeoutMs,
        bodyTimeout: timeouts.bodyTimeoutMs,
      },
      new UpstreamAttempt(request.cancellation, resolve, reject),
    );
  });
}

/**
 * undici's handler for one attempt and, once the headers are in, the response's body: one object
 * with its methods on the prototype, so an attempt allocates no closure but its abort listener.
 * Body chunks that arrive before a sink is attached are queued.
 */
class UpstreamAttempt implements Dispatcher.DispatchHandler, UpstreamBody {
  #controller: Dispatcher.DispatchController | undefined;
  #sink: BodySink | undefined;
  #queued: Buffer[] | undefined;
  #ended = false;
  #failure: Error | undefined;
  #started = false;
  readonly #cancellation: Cancellation;
  readonly #resolve: (response: UpstreamResponse) => void;
  readonly #reject: (failure: UpstreamFailure) => void;
  readonly #stopListening: () => void;

  constructor(cancellation: Cancellation, resolve: (response: UpstreamResponse) => void, reject: (failure: UpstreamFailure) => void) {
    this.#cancellation = cancellation;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#stopListening = cancellation.onAbort(() => this.#controller?.abort(new Error("aborted by the client")));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cancellation.aborted) controller.abort(new Error("aborted by the client"));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#started = true;
    this.#resolve({ status: statusCode, headers, body: decodedBody(headers, this) });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#sink === undefined) (this.#queued ??= []).push(chunk);
    else if (!this.#sink.onData(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#stopListening();
    this.#ended = true;
    this.#sink?.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#stopListening();
    if (!this.#started) {
      this.#reject(new UpstreamFailure(failureKind(error, this.#cancellation)));
      return;
    }
    this.#failure = error;
    this.#sink?.onError(error);
  }

  consume(sink: BodySink): void {
    this.#sink = sink;
    const pending = this.#queued;
    this.#queued = undefined;
    if (pending !== undefined) for (const chunk of pending) if (!sink.onData(chunk)) this.#controller?.pause();
    if (this.#failure !== undefined) sink.onError(this.#failure);
    else if (this.#ended) sink.onEnd();
  }

  resume(): void {
    this.#controller?.resume();
  }

  destroy(): void {
    this.#controller?.abort(new Error("body discarded"));
  }
}

/**
 * Origin and path of an absolute URL the adapters built from the configured base URL (checked at
 * start-up), without a `URL` object per call.
 */
function splitUrl(url: string): { origin: string; path: string } {
  const pathStart = url.indexOf("/", url.indexOf("://") + 3);
  return pathStart === -1 ? { origin: url, path: "/" } : { origin: url.slice(0, pathStart), path: url.slice(pathStart) };
}

export function failureKind(error: unknown, cancellation: Pick<Cancellation, "aborted">): UpstreamFailureKind {
  if (cancellation.aborted) return "aborted";
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return "timeout";
  }
  return "connection";
}

/** Reads a (small) error body whole; bodies over the cap are cut, which only affects classification. */
export function readBody(body: UpstreamBody, maxBytes = 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.consume({
      onData(chunk) {
        if (size < maxBytes) chunks.push(chunk);
        size += chunk.length;
        return true;
      },
      onEnd: () => resolve(Buffer.concat(chunks)),
      onError: () => resolve(Buffer.concat(chunks)),
    });
  });
}
