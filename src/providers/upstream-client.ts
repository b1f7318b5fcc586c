import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { Cancellation } from "../lib/cancellation.js";
import { decodedBody } from "./content-decoding.js";

/** One request to the provider; `path` is under the configured base URL and may carry a query. */
export type UpstreamRequest = {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  cancellation: Cancellation;
  timeouts: UpstreamTimeouts;
};

export type UpstreamTimeouts = {
  /** Until the response headers arrive (a model may think for a while before answering). */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks. */
  bodyTimeoutMs: number;
};

/** Receives an upstream body chunk by chunk; `onData` returns false to pause until `resume()`. */
export type BodySink = {
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(error: Error): void;
};

/**
 * The upstream body, delivered straight from undici's dispatcher callbacks: no stream object per
 * call (a `Readable` per response is a measurable share of a gateway call's CPU). Always decoded:
 * a compressed answer arrives as the bytes it stands for.
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
  /**
   * Whether the request was handed to a connected socket before it failed: a refused connection
   * never reached the provider, which therefore cannot bill it.
   */
  readonly wasSent: boolean;

  constructor(kind: UpstreamFailureKind, wasSent: boolean) {
    super(`Upstream call failed (${kind})`);
    this.name = "UpstreamFailure";
    this.kind = kind;
    this.wasSent = wasSent;
  }
}

/**
 * The one HTTP client of one provider, over the process's pooled undici dispatcher: the gateway
 * forwards calls with it and the key checks ask with it, so both share one connection pool, one
 * body decoding and one failure vocabulary.
 */
export type UpstreamClient = {
  /** One attempt. Resolves when the response headers arrive; throws only `UpstreamFailure`. */
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
};

/**
 * @param baseUrl from configuration only (checked here, at start-up): an absolute http(s) URL
 *   without credentials, query or fragment; its path (`/v1` for OpenAI) prefixes every request.
 * @throws Error for an unusable base URL
 */
export function createUpstreamClient(options: { dispatcher: Dispatcher; baseUrl: string }): UpstreamClient {
  const { origin, basePath } = splitBaseUrl(options.baseUrl);
  const { dispatcher } = options;
  return {
    send(request) {
      return new Promise((resolve, reject) => {
        const attempt = new UpstreamAttempt(request.cancellation, resolve, reject);
        try {
          dispatcher.dispatch(
            {
              origin,
              path: `${basePath}${request.path}`,
              method: request.method,
              headers: request.headers,
              body: request.body ?? null,
              headersTimeout: request.timeouts.headersTimeoutMs,
              bodyTimeout: request.timeouts.bodyTimeoutMs,
            },
            attempt,
          );
        } catch {
          // undici refuses bad input (a header value it cannot send) synchronously, quoting it.
          attempt.onResponseError(undefined, new Error("request refused by the HTTP client"));
        }
      });
    },
  };
}

function splitBaseUrl(baseUrl: string): { origin: string; basePath: string } {
  const url = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined;
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new Error("A provider base URL must be an absolute http(s) URL.");
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new Error("A provider base URL must not carry credentials, a query or a fragment.");
  }
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, "") };
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

  /** Called by undici as the request is written to a connected socket (never for a refused connection). */
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

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#stopListening();
    if (!this.#started) {
      this.#reject(new UpstreamFailure(failureKind(error, this.#cancellation), this.#controller !== undefined));
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

function failureKind(error: unknown, cancellation: Pick<Cancellation, "aborted">): UpstreamFailureKind {
  if (cancellation.aborted) return "aborted";
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return "timeout";
  }
  return "connection";
}

/**
 * Reads a (small) body whole: error answers and key-check answers. Bodies over the cap are cut
 * (and the rest discarded), which only affects classification; a body that fails midway gives
 * what arrived.
 */
export function readBody(body: UpstreamBody, maxBytes = 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.consume({
      onData(chunk) {
        if (size < maxBytes) chunks.push(chunk);
        size += chunk.length;
        if (size >= maxBytes) {
          body.destroy();
          resolve(Buffer.concat(chunks).subarray(0, maxBytes));
        }
        return true;
      },
      onEnd: () => resolve(Buffer.concat(chunks)),
      onError: () => resolve(Buffer.concat(chunks)),
    });
  });
}
