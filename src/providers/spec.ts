import type { KeyCheckResult, ProviderId } from "../lib/domain.js";
import type { AppError } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import type { Usage } from "../lib/usage.js";
import type { UpstreamClient } from "./upstream-client.js";

/** Why a submitted key was refused before any network call. */
export type KeyFormatProblemCode =
  | "empty"
  | "whitespace"
  | "characters"
  | "length"
  | "wrong_prefix"
  | "other_provider"
  | "admin_key";

export type KeyFormatProblem = { code: KeyFormatProblemCode; message: string };

/** Outcome of a live check. `message` is already scrubbed of anything key-like. */
export type KeyCheck = { result: KeyCheckResult; message: string };

/**
 * What a provider's error answer means, the one reading of it that the key checks and the
 * gateway share (docs/decisions.md, "A provider's error answers"):
 * - `invalid_key`: the key is wrong, revoked or its account deactivated: mark it `invalid`;
 * - `no_credits`: the account cannot pay: mark the key `no_credits`;
 * - `rate_limited`: too many requests now (retry later; the key is fine);
 * - `unavailable`: the provider failed or is overloaded (5xx, Anthropic's 529; retry later);
 * - `not_permitted`: the key works but may not make this request (a 403 for a model or a region,
 *   a restricted key without the scope): the key stays usable, the answer goes to the caller;
 * - `refused`: the request itself was refused (400, 404, 413…): the caller's to fix.
 */
export type ProviderErrorKind = "invalid_key" | "no_credits" | "rate_limited" | "unavailable" | "not_permitted" | "refused";

/** A classified error answer; `message` is the provider's own words, NOT scrubbed (scrub before showing). */
export type ProviderError = { kind: ProviderErrorKind; message: string | undefined };

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
  /**
   * Events so far that carried generated output (a text or tool-argument delta). Providers stream
   * about one token per such event, so for a stream cut before its usage arrived this is the
   * estimate of its output tokens.
   */
  outputDeltas(): number;
};

/**
 * One gateway endpoint of a provider: everything Keyport needs to route, forward and account
 * for it. Each provider lists its endpoints in one table; adding an endpoint is one entry there.
 */
export type GatewayEndpoint = {
  /** The endpoint's name in usage records and logs (`chat.completions`, `messages.count_tokens`). */
  readonly name: string;
  readonly method: "GET" | "POST";
  /** Keyport's paths for it: under the provider prefix, plus any alias (`/v1/chat/completions`). */
  readonly routes: readonly string[];
  /** The provider's path, under the configured base URL. */
  readonly upstreamPath: string;
  /** The query parameters the provider defines for it; no other parameter of the client's URL goes upstream. */
  readonly query: readonly string[];
  /** False for what the provider does not bill (listing models, counting tokens): recorded at zero cost. */
  readonly isBilled: boolean;
  /** Reads model/stream from the body, and adds what usage accounting needs (and nothing else). */
  prepare(body: Buffer | undefined): PreparedRequest | AppError;
  /** Usage of a whole JSON answer; a malformed body gives no usage, never an exception. */
  usageFromResponse(body: Buffer): { usage: Usage; model: string | undefined };
  createStreamObserver(options: { hideUsageChunk: boolean }): StreamObserver;
};

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
 * One adapter per provider: everything provider-specific (key shapes, key checks, error answers,
 * endpoints, headers, error shapes) lives behind this port, and nothing provider-specific outside
 * it. Pure apart from its upstream client; adapters receive a decrypted key and never look
 * anything up.
 */
export type ProviderAdapter = {
  readonly id: ProviderId;
  /** The provider's one HTTP client: key checks and the gateway both send through it. */
  readonly upstream: UpstreamClient;

  /** Pure format check of an already-normalised key (see `normalizeKey`). */
  checkKeyFormat(apiKey: string): KeyFormatProblem | undefined;
  /**
   * Asks the provider whether the key works. Never throws for provider answers or network
   * failures: those become `invalid`, `no_credits`, `rate_limited` or `unreachable`.
   */
  checkKey(apiKey: Redacted<string>, options?: { signal?: AbortSignal }): Promise<KeyCheck>;
  /** The one classification of an error answer (status + body), for key checks and the gateway alike. */
  classifyError(status: number, body: Buffer): ProviderError;

  /** The endpoints the gateway serves for this provider. */
  readonly endpoints: readonly GatewayEndpoint[];
  readonly requestHeaders: RequestHeaderRules;
  readonly responseHeaders: ResponseHeaderRules;
  /** Headers that carry the key upstream, in the provider's own scheme. */
  authHeaders(apiKey: Redacted<string>): Record<string, string>;
  /** Renders one of Keyport's own errors (no key, rate limited, timeout…) in the provider's error shape. */
  renderError(error: AppError): ProviderErrorResponse;
  /**
   * An error event to end a stream that broke after its first bytes went out (the upstream
   * connection died): the provider's own in-stream error shape, so the SDK raises an error instead
   * of seeing a clean end. OpenAI: `data: {"error":{…}}`; Anthropic: `event: error` + `data: {"type":"error",…}`.
   */
  renderStreamError(error: AppError): Buffer;
};

export type ProviderRegistry = Readonly<Record<ProviderId, ProviderAdapter>>;

/** What an adapter is built from: configuration and the process's pooled HTTP dispatcher. */
export type ProviderAdapterOptions = {
  /** From configuration only, never from a request. */
  baseUrl: string;
  /** Deadline for one key check, in milliseconds. */
  keyCheckTimeoutMs: number;
  upstream: UpstreamClient;
};
