import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { Cancellation } from "./cancellation.js";

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
  const { cancellation } = request;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let sink: BodySink | undefined;
    let queued: Buffer[] = [];
    let ended = false;
    let failure: Error | undefined;
    let started = false;
    const done = cancellation.onAbort(() => controller?.abort(new Error("aborted by the client")));

    const body: UpstreamBody = {
      consume(next) {
        sink = next;
        const pending = queued;
        queued = [];
        for (const chunk of pending) if (!next.onData(chunk)) controller?.pause();
        if (failure !== undefined) next.onError(failure);
        else if (ended) next.onEnd();
      },
      resume: () => controller?.resume(),
      destroy: () => controller?.abort(new Error("body discarded")),
    };

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
      {
        onRequestStart(requestController) {
          controller = requestController;
          if (cancellation.aborted) requestController.abort(new Error("aborted by the client"));
        },
        onResponseStart(_controller, statusCode, headers) {
          started = true;
          resolve({ status: statusCode, headers, body });
        },
        onResponseData(responseController, chunk) {
          if (sink === undefined) queued.push(chunk);
          else if (!sink.onData(chunk)) responseController.pause();
        },
        onResponseEnd() {
          done();
          ended = true;
          sink?.onEnd();
        },
        onResponseError(_controller, error) {
          done();
          if (!started) {
            reject(new UpstreamFailure(failureKind(error, cancellation)));
            return;
          }
          failure = error;
          sink?.onError(error);
        },
      },
    );
  });
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
