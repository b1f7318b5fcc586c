import type { Dispatcher } from "undici";

/** One JSON request to a provider, with a hard deadline. */
export type ProviderHttpRequest = {
  dispatcher: Dispatcher;
  /** From configuration, no trailing slash; may carry a path prefix such as `/v1`. */
  baseUrl: string;
  /** Appended to the base URL's path; starts with `/`. */
  path: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  /** Serialised as JSON when present. */
  body?: unknown;
  /** Deadline for the whole exchange (connect, headers and body), in milliseconds. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Larger bodies are discarded and reported as `body: undefined`. Default 1 MiB. */
  maxBodyBytes?: number;
};

export type ProviderHttpResponse = {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** Parsed JSON, or `undefined` when the body was empty, not JSON or over the size cap. */
  body: unknown;
};

/**
 * The request did not produce an answer. Deliberately carries no error text: undici errors can
 * quote header values, and the `Authorization`/`x-api-key` header value is the key.
 */
export type ProviderHttpFailure = { networkError: "timeout" | "connection" };

export type ProviderHttpResult = ProviderHttpResponse | ProviderHttpFailure;

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

export function isNetworkFailure(result: ProviderHttpResult): result is ProviderHttpFailure {
  return "networkError" in result;
}

/**
 * Sends one request through the shared dispatcher and reads the answer as JSON. Never throws and
 * never returns an exception message. A caller abort is reported like a timeout (the caller gave
 * up waiting); refused connections, resets and malformed input are `connection`.
 */
export async function requestProviderJson(request: ProviderHttpRequest): Promise<ProviderHttpResult> {
  const timeoutSignal = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal === undefined ? timeoutSignal : AbortSignal.any([request.signal, timeoutSignal]);
  try {
    const target = new URL(request.baseUrl);
    const basePath = target.pathname.replace(/\/+$/, "");
    const response = await request.dispatcher.request({
      origin: target.origin,
      path: `${basePath}${request.path}`,
      method: request.method,
      headers: request.body === undefined ? request.headers : { "content-type": "application/json", ...request.headers },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      signal,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
    });
    const body = await readJsonBody(response.body, request.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    return { status: response.statusCode, headers: flattenHeaders(response.headers), body };
  } catch (error) {
    return { networkError: signal.aborted || isTimeoutError(error) ? "timeout" : "connection" };
  }
}

async function readJsonBody(body: Dispatcher.ResponseData["body"], maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > maxBytes) {
      // Destroying frees the connection instead of downloading the rest of an oversized answer.
      body.destroy();
      return undefined;
    }
    chunks.push(buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

function isTimeoutError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  const name = (error as { name?: unknown }).name;
  return (typeof code === "string" && TIMEOUT_CODES.has(code)) || name === "TimeoutError";
}

/** A short, key-free sentence for a request that got no answer. */
export function describeNetworkFailure(providerName: string, failure: ProviderHttpFailure, timeoutMs: number): string {
  return failure.networkError === "timeout"
    ? `${providerName} did not answer within ${timeoutMs} ms. Try again later.`
    : `Could not connect to ${providerName}. Try again later.`;
}
