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

/**
 * Which client request headers go upstream, and how. Everything not named here stays at Keyport
 * (the client's credentials above all); the adapter adds the key in the provider's own scheme.
 */
export type RequestHeaderRules = {
  /** Sent as the client sent them, on every call (`anthropic-version`). */
  passed: readonly string[];
  /**
   * Choose which account is billed (`openai-organization`, `openai-project`): the client's values
   * go only with the owner's own key; platform calls carry `platformAccount` instead.
   */
  account: readonly string[];
  /** The operator's own account headers for platform calls (configuration); empty sends none. */
  platformAccount: Readonly<Record<string, string>>;
  /**
   * Switch on beta features (`openai-beta`, `anthropic-beta`), comma-separated values: as sent
   * with the owner's own key, filtered to the operator's list on platform calls.
   */
  beta: readonly string[];
};

/** Which provider response headers reach the client (an allow-list; see `gateway/response-headers.ts`). */
export type ResponseHeaderRules = {
  /** The provider's request id header, relayed as `x-upstream-request-id`. */
  requestId: string;
  /** Relayed as they are on every call (processing time; Anthropic's `request-id`, which its SDK reads). */
  relayed: readonly string[];
  /**
   * Prefixes of the provider's rate-limit headers. They describe the account of the key used, so
   * they are relayed on calls with the owner's own key only: on platform calls they would describe
   * the operator's account, next to Keyport's own `ratelimit-*`.
   */
  rateLimitPrefixes: readonly string[];
};

/** Rendered error response in the provider's own shape, so the official SDKs raise their usual errors. */
export type ProviderErrorResponse = { status: number; headers: Record<string, string>; body: string };

/**
 * The gateway side of a provider adapter. Pure functions over plain data: the gateway does the
 * I/O. No `if (provider === …)` in the gateway; every difference lives here.
 */
export type GatewayAdapter = {
  readonly id: ProviderId;
  /**
   * Upstream URL for an endpoint, from the configured base URL only, with only the query
   * parameters the endpoint defines taken from the client's `search` (`""` or starting with `?`).
   */
  upstreamUrl(endpoint: GatewayEndpoint, search: string): string;
  /** Headers that carry the key upstream, in the provider's own scheme. */
  authHeaders(apiKey: Redacted<string>): Record<string, string>;
  requestHeaders: RequestHeaderRules;
  responseHeaders: ResponseHeaderRules;
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
