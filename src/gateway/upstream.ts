import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";

export type UpstreamRequest = {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body: Buffer | undefined;
  signal: AbortSignal;
};

export type UpstreamResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
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

/** One upstream attempt through the pooled dispatcher. Throws only `UpstreamFailure`. */
export async function callUpstream(
  dispatcher: Dispatcher,
  request: UpstreamRequest,
  timeouts: UpstreamTimeouts,
): Promise<UpstreamResponse> {
  const url = new URL(request.url);
  try {
    const response = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers: request.headers,
      body: request.body ?? null,
      signal: request.signal,
      headersTimeout: timeouts.headersTimeoutMs,
      bodyTimeout: timeouts.bodyTimeoutMs,
    });
    return { status: response.statusCode, headers: response.headers, body: response.body };
  } catch (error) {
    throw new UpstreamFailure(failureKind(error, request.signal));
  }
}

export function failureKind(error: unknown, signal: AbortSignal): UpstreamFailureKind {
  if (signal.aborted) return "aborted";
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return "timeout";
  }
  return "connection";
}

/** Reads a (small) error body whole; bodies over the cap are cut, which only affects classification. */
export async function readBody(body: UpstreamResponse["body"], maxBytes = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size < maxBytes) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks);
}
