import { AppError, assertNever } from "../../lib/errors.js";
import type { ErrorCode } from "../../lib/errors.js";
import { NO_USAGE } from "../../lib/usage.js";
import type { Usage } from "../../lib/usage.js";
import {
  createSseObserver,
  createUpstreamUrl,
  hasObjectField,
  headerValueOfKey,
  isNestedDeeperThan,
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
  ResponseHeaderRules,
  StreamObserver,
} from "../gateway-spec.js";
import { appendTopLevelField, fieldName, readTopLevelFields, replaceTopLevelField } from "../json-fields.js";
import { readSseEventName, startsWithBytes } from "../sse.js";

/**
 * Paths under the base URL, which already ends in `/v1` (`https://api.openai.com/v1`), and the
 * query parameters each defines: none.
 * @see https://platform.openai.com/docs/api-reference
 */
const PATHS = {
  "chat.completions": { path: "/chat/completions", query: [] },
  embeddings: { path: "/embeddings", query: [] },
  responses: { path: "/responses", query: [] },
  models: { path: "/models", query: [] },
} as const satisfies Partial<Record<GatewayEndpoint, UpstreamPath>>;

const ACCOUNT_HEADERS = Object.freeze(["openai-organization", "openai-project"]);
const BETA_HEADERS = Object.freeze(["openai-beta"]);

const RESPONSE_HEADERS: ResponseHeaderRules = Object.freeze({
  requestId: "x-request-id",
  relayed: Object.freeze(["openai-processing-ms"]),
  rateLimitPrefixes: Object.freeze(["x-ratelimit-"]),
});

const USAGE_KEY = Buffer.from('"usage":');
/** How OpenAI sends an error inside a chat stream: a data-only event whose object starts with `error`. */
const ERROR_CHUNK_PREFIX = Buffer.from('data: {"error"');

/** Error codes/types OpenAI uses for an account that cannot pay for inference. */
const NO_CREDIT_CODES = new Set(["insufficient_quota", "billing_not_active"]);
/** Codes/types of a 403 that condemn the key itself rather than this one request. */
const DEAD_KEY_CODES = new Set(["invalid_api_key", "account_deactivated"]);
const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504]);

/**
 * Keyport's error codes in OpenAI's error envelope. The `openai` SDK picks its error class from
 * the status alone (401 `AuthenticationError`, 403 `PermissionDeniedError`, 429 `RateLimitError`,
 * 5xx `InternalServerError`); `type` and `code` are for callers that branch on them, so they
 * follow OpenAI's own usage where OpenAI has an equivalent:
 *
 * | Keyport code           | status | type                    | code                  |
 * |------------------------|--------|-------------------------|-----------------------|
 * | 4xx (default)          | 4xx    | `invalid_request_error` | Keyport's code        |
 * | `unauthenticated`      | 401    | `invalid_request_error` | `invalid_api_key`     |
 * | `rate_limited`         | 429    | `requests`              | `rate_limit_exceeded` |
 * | `budget_exceeded`      | 429    | `insufficient_quota`    | `budget_exceeded`     |
 * | 5xx                    | 5xx    | `server_error`          | Keyport's code        |
 *
 * `budget_exceeded` uses the type OpenAI gives an exhausted quota, which clients already treat
 * as "stop" (see DESIGN.md, Gateway). OpenAI has no permission type, so a 403 keeps
 * `invalid_request_error` with Keyport's code (e.g. `no_key_available`).
 * @see https://platform.openai.com/docs/guides/error-codes/api-errors
 */
const OPENAI_ERROR_FIELDS: Readonly<Record<ErrorCode, { type: string; code: string }>> = {
  invalid_request: { type: "invalid_request_error", code: "invalid_request" },
  invalid_json: { type: "invalid_request_error", code: "invalid_json" },
  invalid_key_format: { type: "invalid_request_error", code: "invalid_key_format" },
  unauthenticated: { type: "invalid_request_error", code: "invalid_api_key" },
  forbidden: { type: "invalid_request_error", code: "forbidden" },
  no_key_available: { type: "invalid_request_error", code: "no_key_available" },
  not_found: { type: "invalid_request_error", code: "not_found" },
  duplicate_key: { type: "invalid_request_error", code: "duplicate_key" },
  idempotency_in_progress: { type: "invalid_request_error", code: "idempotency_in_progress" },
  key_undecryptable: { type: "invalid_request_error", code: "key_undecryptable" },
  payload_too_large: { type: "invalid_request_error", code: "payload_too_large" },
  unsupported_media_type: { type: "invalid_request_error", code: "unsupported_media_type" },
  key_rejected: { type: "invalid_request_error", code: "key_rejected" },
  idempotency_mismatch: { type: "invalid_request_error", code: "idempotency_mismatch" },
  rate_limited: { type: "requests", code: "rate_limit_exceeded" },
  budget_exceeded: { type: "insufficient_quota", code: "budget_exceeded" },
  internal: { type: "server_error", code: "internal" },
  upstream_error: { type: "server_error", code: "upstream_error" },
  unavailable: { type: "server_error", code: "unavailable" },
  upstream_timeout: { type: "server_error", code: "upstream_timeout" },
};

/**
 * The gateway side of OpenAI. `baseUrl` comes from configuration and includes the API version
 * (`https://api.openai.com/v1`).
 * @throws Error when `baseUrl` is not an absolute http(s) URL
 */
export function createOpenAiGateway(options: {
  baseUrl: string;
  /** The operator's organization and project, sent with the platform key. */
  platformAccount?: { organization: string | undefined; project: string | undefined };
}): GatewayAdapter {
  const platformAccount: Record<string, string> = {};
  if (options.platformAccount?.organization !== undefined) platformAccount["openai-organization"] = options.platformAccount.organization;
  if (options.platformAccount?.project !== undefined) platformAccount["openai-project"] = options.platformAccount.project;
  return {
    id: "openai",
    upstreamUrl: createUpstreamUrl(options.baseUrl, PATHS),
    authHeaders: (apiKey) => ({ authorization: `Bearer ${headerValueOfKey(apiKey)}` }),
    requestHeaders: Object.freeze({ passed: [], account: ACCOUNT_HEADERS, platformAccount: Object.freeze(platformAccount), beta: BETA_HEADERS }),
    responseHeaders: RESPONSE_HEADERS,
    prepareRequest: prepareOpenAiRequest,
    usageFromResponse: openAiUsageFromResponse,
    createStreamObserver: createOpenAiStreamObserver,
    classifyFailure: classifyOpenAiFailure,
    renderError: renderOpenAiError,
    renderStreamError: renderOpenAiStreamError,
  };
}

/**
 * Reads `model`/`stream` and passes the client's bytes on untouched, except for a chat stream
 * that did not ask for usage (see {@link withStreamUsage}).
 */
export function prepareOpenAiRequest(endpoint: GatewayEndpoint, body: Buffer | undefined): PreparedRequest | AppError {
  switch (endpoint) {
    case "models":
      return { model: undefined, stream: false, body: undefined, hideUsageChunk: false };
    case "chat.completions":
    case "embeddings":
    case "responses":
      break;
    case "messages":
    case "messages.count_tokens":
      return new AppError("not_found", "OpenAI has no such endpoint.");
    default:
      return assertNever(endpoint);
  }
  const request = readJsonRequestBody(body);
  if (request instanceof AppError) return request;
  // Embeddings never stream; a stray `stream: true` must not make the gateway expect events.
  const stream = request.stream && endpoint !== "embeddings";
  if (endpoint === "chat.completions" && stream && body !== undefined) {
    const changed = withStreamUsage(request.fields, body);
    if (changed instanceof AppError) return changed;
    if (changed !== undefined) return { model: request.model, stream, body: changed, hideUsageChunk: true };
  }
  return { model: request.model, stream, body, hideUsageChunk: false };
}

/**
 * OpenAI reports a stream's usage only when asked (`stream_options.include_usage`), in one extra
 * chunk with empty `choices` before `[DONE]`. Keyport needs that usage to bill and settle the
 * budget, so it asks on the client's behalf; the client did not ask, so the observer removes the
 * extra chunk again (`hideUsageChunk`). Other `stream_options` fields are kept. Returns the new
 * body, or `undefined` when the client already asked (or sent a `stream_options` OpenAI will
 * refuse anyway: forwarded as it is, OpenAI explains the mistake).
 *
 * What the client still sees of it: `"usage": null` on every other chunk, which the SDK types
 * allow. Usually the client sent no `stream_options`, and the field is added after the body's
 * last member; otherwise only the `stream_options` value is rewritten. Either way every other byte
 * stays as the client wrote it.
 */
function withStreamUsage(fields: Record<string, unknown>, body: Buffer): Buffer | AppError | undefined {
  const streamOptions = fields.stream_options;
  if (!Object.hasOwn(fields, "stream_options")) {
    const appended = appendTopLevelField(body, "stream_options", { include_usage: true });
    if (appended !== undefined) return appended;
  }
  if (isRecord(streamOptions) && streamOptions.include_usage === true) return undefined;
  if (streamOptions !== undefined && streamOptions !== null && !isRecord(streamOptions)) return undefined;
  // Re-serialising a value nested thousands of levels deep would overflow the stack; OpenAI's
  // `stream_options` is a flat object, so such a value can only be a mistake or an attack.
  if (isRecord(streamOptions) && isNestedDeeperThan(streamOptions, MAX_STREAM_OPTIONS_DEPTH)) {
    return new AppError("invalid_request", `stream_options is nested too deeply (more than ${MAX_STREAM_OPTIONS_DEPTH} levels): send a flat object such as {"include_usage": true}.`);
  }
  const merged = { ...(isRecord(streamOptions) ? streamOptions : {}), include_usage: true };
  return replaceTopLevelField(body, "stream_options", merged);
}

/** Deeper `stream_options` values are refused rather than re-serialised. */
const MAX_STREAM_OPTIONS_DEPTH = 32;

/** The fields of a JSON answer that usage is read from; the rest is relayed unread. */
const ANSWER_FIELDS = [fieldName("model"), fieldName("usage")];

/** Usage and model of a whole JSON answer; a malformed body gives `NO_USAGE`, never an exception. */
export function openAiUsageFromResponse(
  endpoint: GatewayEndpoint,
  body: Buffer,
): { usage: Usage; model: string | undefined } {
  const json = readTopLevelFields(body, ANSWER_FIELDS);
  if (json === undefined) return { usage: NO_USAGE, model: undefined };
  const model = stringField(json, "model");
  const usage = isRecord(json.usage) ? json.usage : undefined;
  switch (endpoint) {
    case "chat.completions":
    case "embeddings":
      return { usage: usage === undefined ? NO_USAGE : readChatUsage(usage), model };
    case "responses":
      return { usage: usage === undefined ? NO_USAGE : readResponsesUsage(usage), model };
    case "models":
    case "messages":
    case "messages.count_tokens":
      return { usage: NO_USAGE, model: undefined };
    default:
      return assertNever(endpoint);
  }
}

/**
 * Chat completions and embeddings: `prompt_tokens` already includes the cached tokens.
 * Embeddings have no completion tokens, so `outputTokens` stays `undefined`.
 * @see https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage
 */
function readChatUsage(usage: Record<string, unknown>): Usage {
  const details = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {};
  return {
    inputTokens: tokenCount(usage.prompt_tokens),
    outputTokens: tokenCount(usage.completion_tokens),
    cachedInputTokens: tokenCount(details.cached_tokens),
    cacheWriteTokens: undefined,
  };
}

/**
 * Responses API: `input_tokens` already includes the cached tokens.
 * @see https://platform.openai.com/docs/api-reference/responses/object#responses/object-usage
 */
function readResponsesUsage(usage: Record<string, unknown>): Usage {
  const details = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : {};
  return {
    inputTokens: tokenCount(usage.input_tokens),
    outputTokens: tokenCount(usage.output_tokens),
    cachedInputTokens: tokenCount(details.cached_tokens),
    cacheWriteTokens: undefined,
  };
}

export function createOpenAiStreamObserver(
  endpoint: GatewayEndpoint,
  options: { hideUsageChunk: boolean },
): StreamObserver {
  // Only chat streams have a usage chunk to hide; every other stream passes through unfiltered.
  const isFiltering = options.hideUsageChunk && endpoint === "chat.completions";
  return createSseObserver(createOpenAiInspector(endpoint === "responses", isFiltering), { isFiltering });
}

/** What the inspector reads of a chat chunk, and of a Responses API event (its `response`). */
const CHAT_EVENT_FIELDS = [fieldName("usage"), fieldName("model"), fieldName("choices")];
const RESPONSES_EVENT_FIELDS = [fieldName("response")];

/**
 * Chat streams: every chunk carries `"usage":null` or no usage at all, except the usage chunk
 * (empty `choices`) and, on some compatible upstreams, a last chunk with both choices and usage.
 * Responses API streams: `response.completed` (also `.incomplete`, `.failed`) carries
 * `response.usage`. Only events with a non-null `usage` object are parsed; errors are told by
 * their first bytes (chat) or event name (Responses API).
 */
function createOpenAiInspector(isResponses: boolean, isFiltering: boolean): SseInspector {
  let usage: Usage = NO_USAGE;
  let model: string | undefined;
  let sawError = false;
  return {
    inspect(event) {
      if (isResponses ? isResponsesErrorEvent(event) : startsWithBytes(event, ERROR_CHUNK_PREFIX)) sawError = true;
      if (!hasObjectField(event, USAGE_KEY)) return "keep";
      const json = readEventFields(event, isResponses ? RESPONSES_EVENT_FIELDS : CHAT_EVENT_FIELDS);
      if (json === undefined) return "keep";
      const holder = isResponses ? json.response : json;
      if (!isRecord(holder) || !isRecord(holder.usage)) return "keep";
      // Totals, not increments: a later report replaces an earlier one.
      usage = isResponses ? readResponsesUsage(holder.usage) : readChatUsage(holder.usage);
      model = stringField(holder, "model") ?? model;
      // Only the usage-only chunk is Keyport's addition; a chunk that also has choices is the client's.
      return isFiltering && Array.isArray(json.choices) && json.choices.length === 0 ? "drop" : "keep";
    },
    usage: () => usage,
    model: () => model,
    sawError: () => sawError,
  };
}

function isResponsesErrorEvent(event: Buffer): boolean {
  const name = readSseEventName(event);
  return name === "error" || name === "response.failed";
}

/**
 * What an upstream error answer means for the key. By status and `error.code`/`error.type`
 * first; message text only where OpenAI gives nothing else. An unparsable body classifies by
 * status alone.
 * @see https://platform.openai.com/docs/guides/error-codes/api-errors
 */
export function classifyOpenAiFailure(status: number, body: Buffer): FailureKind {
  const error = readProviderError(body);
  const codes = [error?.code, error?.type];
  if (codes.some((code) => code !== undefined && NO_CREDIT_CODES.has(code))) return "no_credits";
  if (status === 401) {
    // A restricted key without the scope for this endpoint gets a 401 naming the missing scope
    // (with `code: null`); it still works for the endpoints it is allowed, so it is not dead.
    return /missing scopes?/i.test(error?.message ?? "") ? "final" : "invalid_key";
  }
  if (status === 403) {
    // Other 403s (e.g. `unsupported_country_region_territory`) concern the request, not the key.
    return codes.some((code) => code !== undefined && DEAD_KEY_CODES.has(code)) ? "invalid_key" : "final";
  }
  if (status === 429 && error?.code === undefined && /exceeded your current quota/i.test(error?.message ?? "")) {
    // Last resort, for proxies that keep OpenAI's text but drop its code.
    return "no_credits";
  }
  return RETRYABLE_STATUSES.has(status) ? "retryable" : "final";
}

/** Renders a Keyport error in OpenAI's envelope (see {@link OPENAI_ERROR_FIELDS}). */
export function renderOpenAiError(error: AppError): ProviderErrorResponse {
  return providerErrorResponse(error, openAiErrorBody(error));
}

/**
 * The same envelope as an in-stream event: the `openai` SDK throws an `APIError` for any stream
 * event whose data has an `error` object (chat and Responses API streams alike).
 */
export function renderOpenAiStreamError(error: AppError): Buffer {
  return streamErrorEvent(openAiErrorBody(error));
}

function openAiErrorBody(error: AppError): { error: Record<string, string | null> } {
  const fields = OPENAI_ERROR_FIELDS[error.code];
  return { error: { message: error.publicMessage, type: fields.type, param: null, code: fields.code } };
}
