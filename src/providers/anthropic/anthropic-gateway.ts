import { AppError, assertNever } from "../../lib/errors.js";
import type { ErrorCode } from "../../lib/errors.js";
import { NO_USAGE } from "../../lib/usage.js";
import type { Usage } from "../../lib/usage.js";
import {
  createSseObserver,
  createUpstreamUrl,
  headerValueOfKey,
  isRecord,
  providerErrorResponse,
  readEventFields,
  readJsonRequestBody,
  readProviderError,
  streamErrorEvent,
  stringField,
  tokenCount,
} from "../gateway-common.js";
import type { SseInspector, UpstreamPath } from "../gateway-common.js";
import type {
  FailureKind,
  GatewayAdapter,
  GatewayEndpoint,
  PreparedRequest,
  ProviderErrorResponse,
  RequestHeaderRules,
  ResponseHeaderRules,
  StreamObserver,
} from "../gateway-spec.js";
import { fieldName, readTopLevelFields } from "../json-fields.js";
import { readSseEventName } from "../sse.js";

/**
 * Paths under the base URL, which has no version path (`https://api.anthropic.com`), and the
 * query parameters each defines (`beta=true` is how the SDK's beta namespace marks its calls).
 * @see https://docs.claude.com/en/api/models-list
 */
const PATHS = {
  messages: { path: "/v1/messages", query: ["beta"] },
  "messages.count_tokens": { path: "/v1/messages/count_tokens", query: ["beta"] },
  models: { path: "/v1/models", query: ["limit", "after_id", "before_id", "beta"] },
} as const satisfies Partial<Record<GatewayEndpoint, UpstreamPath>>;

const REQUEST_HEADERS: RequestHeaderRules = Object.freeze({
  passed: Object.freeze(["anthropic-version"]),
  account: Object.freeze([]),
  platformAccount: Object.freeze({}),
  beta: Object.freeze(["anthropic-beta"]),
});

const RESPONSE_HEADERS: ResponseHeaderRules = Object.freeze({
  requestId: "request-id",
  relayed: Object.freeze(["request-id"]),
  rateLimitPrefixes: Object.freeze(["anthropic-ratelimit-"]),
});

/** 529 is Anthropic's "overloaded". */
const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504, 529]);

/**
 * Keyport's error codes as Anthropic error types, by status as Anthropic documents them: 400
 * `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404
 * `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 500 `api_error`
 * (`overloaded_error` is for 529 only, which Keyport never sends). Statuses Anthropic does not
 * list (409, 415, 422) are `invalid_request_error`; 502/503/504 are `api_error`. The
 * `@anthropic-ai/sdk` picks its error class from the status alone.
 *
 * `budget_exceeded` stays a 429 `rate_limit_error` as the status table says; `x-should-retry:
 * false` is what stops the SDK from retrying it.
 * @see https://docs.claude.com/en/api/errors
 */
const ANTHROPIC_ERROR_TYPES: Readonly<Record<ErrorCode, string>> = {
  invalid_request: "invalid_request_error",
  invalid_json: "invalid_request_error",
  invalid_key_format: "invalid_request_error",
  unauthenticated: "authentication_error",
  forbidden: "permission_error",
  no_key_available: "permission_error",
  not_found: "not_found_error",
  duplicate_key: "invalid_request_error",
  idempotency_in_progress: "invalid_request_error",
  key_undecryptable: "invalid_request_error",
  payload_too_large: "request_too_large",
  unsupported_media_type: "invalid_request_error",
  key_rejected: "invalid_request_error",
  idempotency_mismatch: "invalid_request_error",
  rate_limited: "rate_limit_error",
  budget_exceeded: "rate_limit_error",
  internal: "api_error",
  upstream_error: "api_error",
  unavailable: "api_error",
  upstream_timeout: "api_error",
};

/**
 * The gateway side of Anthropic. `baseUrl` comes from configuration and has no version path
 * (`https://api.anthropic.com`).
 * @throws Error when `baseUrl` is not an absolute http(s) URL
 */
export function createAnthropicGateway(options: { baseUrl: string }): GatewayAdapter {
  return {
    id: "anthropic",
    upstreamUrl: createUpstreamUrl(options.baseUrl, PATHS),
    authHeaders: (apiKey) => ({ "x-api-key": headerValueOfKey(apiKey) }),
    requestHeaders: REQUEST_HEADERS,
    responseHeaders: RESPONSE_HEADERS,
    prepareRequest: prepareAnthropicRequest,
    usageFromResponse: anthropicUsageFromResponse,
    createStreamObserver: createAnthropicStreamObserver,
    classifyFailure: classifyAnthropicFailure,
    renderError: renderAnthropicError,
    renderStreamError: renderAnthropicStreamError,
  };
}

/**
 * Reads `model`/`stream`; the body always goes upstream untouched, because Anthropic streams
 * report usage unasked (`message_start`, `message_delta`).
 */
export function prepareAnthropicRequest(
  endpoint: GatewayEndpoint,
  body: Buffer | undefined,
): PreparedRequest | AppError {
  switch (endpoint) {
    case "models":
      return { model: undefined, stream: false, body: undefined, hideUsageChunk: false };
    case "messages":
    case "messages.count_tokens":
      break;
    case "chat.completions":
    case "embeddings":
    case "responses":
      return new AppError("not_found", "Anthropic has no such endpoint.");
    default:
      return assertNever(endpoint);
  }
  const request = readJsonRequestBody(body);
  if (request instanceof AppError) return request;
  const stream = request.stream && endpoint === "messages";
  return { model: request.model, stream, body, hideUsageChunk: false };
}

/** The fields of a JSON answer that usage is read from; the rest is relayed unread. */
const ANSWER_FIELDS = [fieldName("model"), fieldName("usage"), fieldName("input_tokens")];

/**
 * Usage and model of a whole JSON answer; a malformed body gives `NO_USAGE`, never an exception.
 * For `count_tokens` the input count is what the request *would* use: the call itself is free,
 * so the caller must not price it as consumed tokens.
 */
export function anthropicUsageFromResponse(
  endpoint: GatewayEndpoint,
  body: Buffer,
): { usage: Usage; model: string | undefined } {
  const json = readTopLevelFields(body, ANSWER_FIELDS);
  if (json === undefined) return { usage: NO_USAGE, model: undefined };
  switch (endpoint) {
    case "messages":
      return {
        usage: isRecord(json.usage) ? toUsage(readUsageFields(json.usage)) : NO_USAGE,
        model: stringField(json, "model"),
      };
    case "messages.count_tokens":
      return { usage: { ...NO_USAGE, inputTokens: tokenCount(json.input_tokens) }, model: undefined };
    case "models":
    case "chat.completions":
    case "embeddings":
    case "responses":
      return { usage: NO_USAGE, model: undefined };
    default:
      return assertNever(endpoint);
  }
}

/** Anthropic's usage fields as reported; `undefined` = not said. */
type UsageFields = {
  input: number | undefined;
  cacheRead: number | undefined;
  cacheWrite: number | undefined;
  output: number | undefined;
};

function readUsageFields(usage: Record<string, unknown>): UsageFields {
  return {
    input: tokenCount(usage.input_tokens),
    cacheRead: tokenCount(usage.cache_read_input_tokens),
    cacheWrite: tokenCount(usage.cache_creation_input_tokens),
    output: tokenCount(usage.output_tokens),
  };
}

/**
 * Anthropic's `input_tokens` excludes cache reads and writes, while Keyport's `inputTokens`
 * counts every input token (see `src/lib/usage.ts`), so the three are added up.
 * @see https://docs.claude.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
 */
function toUsage(fields: UsageFields): Usage {
  return {
    inputTokens: fields.input === undefined ? undefined : fields.input + (fields.cacheRead ?? 0) + (fields.cacheWrite ?? 0),
    outputTokens: fields.output,
    cachedInputTokens: fields.cacheRead,
    cacheWriteTokens: fields.cacheWrite,
  };
}

/** Anthropic streams are never filtered: they carry no event Keyport added. */
export function createAnthropicStreamObserver(
  _endpoint: GatewayEndpoint,
  _options: { hideUsageChunk: boolean },
): StreamObserver {
  return createSseObserver(createAnthropicInspector(), { isFiltering: false });
}

/** What the inspector reads of `message_start` (the message) and of `message_delta` (its usage). */
const START_EVENT_FIELDS = [fieldName("message")];
const DELTA_EVENT_FIELDS = [fieldName("usage")];

/**
 * `message_start` carries the input side (and an initial `output_tokens`); each `message_delta`
 * carries CUMULATIVE counts, so the latest replaces the earlier ones and nothing is summed. A
 * stream cut off midway therefore reports the input plus the output counted so far. Only these
 * two events are parsed; every other event is recognised by its name alone.
 * @see https://docs.claude.com/en/docs/build-with-claude/streaming#event-types
 */
function createAnthropicInspector(): SseInspector {
  let fields: UsageFields = { input: undefined, cacheRead: undefined, cacheWrite: undefined, output: undefined };
  let model: string | undefined;
  let sawError = false;
  return {
    inspect(event) {
      const name = readSseEventName(event);
      if (name === "error") sawError = true;
      if (name !== "message_start" && name !== "message_delta") return "keep";
      const json = readEventFields(event, name === "message_start" ? START_EVENT_FIELDS : DELTA_EVENT_FIELDS);
      if (json === undefined) return "keep";
      const holder = name === "message_start" ? json.message : json;
      if (!isRecord(holder)) return "keep";
      if (name === "message_start") model = stringField(holder, "model") ?? model;
      if (isRecord(holder.usage)) {
        const next = readUsageFields(holder.usage);
        fields = {
          input: next.input ?? fields.input,
          cacheRead: next.cacheRead ?? fields.cacheRead,
          cacheWrite: next.cacheWrite ?? fields.cacheWrite,
          output: next.output ?? fields.output,
        };
      }
      return "keep";
    },
    usage: () => toUsage(fields),
    model: () => model,
    sawError: () => sawError,
  };
}

/**
 * What an upstream error answer means for the key: by status and `error.type` first, message
 * text last (Anthropic reports an empty credit balance as a plain 400 whose only tell is the
 * wording). An unparsable body classifies by status alone.
 *
 * A 403 `permission_error` is `final`, not `invalid_key`: the key is fine, it is just not allowed
 * this model or feature, and marking it invalid would take it away from every other call.
 * @see https://docs.claude.com/en/api/errors
 */
export function classifyAnthropicFailure(status: number, body: Buffer): FailureKind {
  const error = readProviderError(body);
  if (status === 402 || error?.type === "billing_error") return "no_credits";
  if (status === 401) return "invalid_key";
  if (status === 400 && /credit balance/i.test(error?.message ?? "")) return "no_credits";
  return RETRYABLE_STATUSES.has(status) ? "retryable" : "final";
}

/** Renders a Keyport error in Anthropic's envelope (see {@link ANTHROPIC_ERROR_TYPES}). */
export function renderAnthropicError(error: AppError): ProviderErrorResponse {
  return providerErrorResponse(error, anthropicErrorBody(error));
}

/**
 * The same envelope as Anthropic's in-stream `event: error`, which `@anthropic-ai/sdk` turns into
 * an `APIError` (it skips events without a name, so the name is required).
 */
export function renderAnthropicStreamError(error: AppError): Buffer {
  return streamErrorEvent(anthropicErrorBody(error), "error");
}

function anthropicErrorBody(error: AppError): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type: ANTHROPIC_ERROR_TYPES[error.code], message: error.publicMessage } };
}
