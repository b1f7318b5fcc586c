import type { ProviderId } from "../lib/domain.js";
import type { AppError } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import type { Usage } from "../lib/usage.js";

/** The gateway endpoints Keyport proxies, per provider. */
export type GatewayEndpoint =
  | "chat.completions"
  | "embeddings"
  | "responses"
  | "models"
  | "messages"
  | "messages.count_tokens";

/** What the gateway learnt from the client's body, and the body to send upstream. */
export type PreparedRequest = {
  /** `undefined` when the body names no model (e.g. GET models). */
  model: string | undefined;
  stream: boolean;
  /** The bytes to send: the client's own bytes unless the adapter had to change a field. */
  body: Buffer | undefined;
  /**
   * True when the adapter asked the provider for usage the client did not ask for (OpenAI
   * `stream_options.include_usage`): the observer then removes that extra chunk from the stream.
   */
  hideUsageChunk: boolean;
};

/**
 * Observes a server-sent event stream on its way to the client. `push` returns the bytes to
 * forward now (usually the chunk itself, untouched); `usage` is what was seen so far, so a stream
 * cut off midway is still recorded with what was streamed.
 */
export type StreamObserver = {
  push(chunk: Buffer): Buffer;
  /** Bytes held back at the end of the stream (an incomplete last event), to forward as they are. */
  flush(): Buffer;
  usage(): Usage;
  /** The model the provider reported, when it said. */
  model(): string | undefined;
  /** An error event inside a 200 stream (Anthropic `event: error`), if one was seen. */
  sawError(): boolean;
};

/** How a provider's error answer bears on the key that was used. */
export type FailureKind =
  /** The key is wrong or revoked: mark it `invalid`. */
  | "invalid_key"
  /** The account has no credit: mark the key `no_credits`. */
  | "no_credits"
  /** Retry later (429 rate limit, 5xx, overloaded). */
  | "retryable"
  /** The client's own mistake or anything else: pass the answer through. */
  | "final";

/** Rendered error response in the provider's own shape, so the official SDKs raise their usual errors. */
export type ProviderErrorResponse = { status: number; headers: Record<string, string>; body: string };

/**
 * The gateway side of a provider adapter. Pure functions over plain data: the gateway does the
 * I/O. No `if (provider === …)` in the gateway; every difference lives here.
 */
export type GatewayAdapter = {
  readonly id: ProviderId;
  /** Upstream URL for an endpoint, from the configured base URL only. */
  upstreamUrl(endpoint: GatewayEndpoint, search: string): string;
  /** Headers that carry the key upstream, in the provider's own scheme. */
  authHeaders(apiKey: Redacted<string>): Record<string, string>;
  /** Client headers worth forwarding upstream (e.g. `anthropic-version`, `anthropic-beta`, `openai-organization`). */
  forwardedHeaderNames: readonly string[];
  /** Reads model/stream from the body, and adds what usage accounting needs (and nothing else). */
  prepareRequest(endpoint: GatewayEndpoint, body: Buffer | undefined): PreparedRequest | AppError;
  /** Usage from a whole JSON response body. */
  usageFromResponse(endpoint: GatewayEndpoint, body: Buffer): { usage: Usage; model: string | undefined };
  createStreamObserver(endpoint: GatewayEndpoint, options: { hideUsageChunk: boolean }): StreamObserver;
  /** Classifies an upstream error answer (status + body). */
  classifyFailure(status: number, body: Buffer): FailureKind;
  /** Renders one of Keyport's own errors (no key, rate limited, timeout…) in the provider's error shape. */
  renderError(error: AppError): ProviderErrorResponse;
  /**
   * An error event to end a stream that broke after its first bytes went out (the upstream
   * connection died): the provider's own in-stream error shape, so the SDK raises an error instead
   * of seeing a clean end. OpenAI: `data: {"error":{…}}`; Anthropic: `event: error` + `data: {"type":"error",…}`.
   */
  renderStreamError(error: AppError): Buffer;
};
