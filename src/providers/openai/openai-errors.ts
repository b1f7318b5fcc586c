import type { AppError, ErrorCode } from "../../lib/errors.js";
import { providerErrorResponse, readProviderError, streamErrorEvent } from "../gateway-common.js";
import type { ProviderError, ProviderErrorResponse } from "../spec.js";

/** Error codes/types OpenAI uses for an account that cannot pay for inference. */
const NO_CREDIT_CODES: ReadonlySet<string> = new Set(["insufficient_quota", "billing_not_active"]);
/** Codes/types of a 403 that condemn the key itself rather than this one request. */
const DEAD_KEY_CODES: ReadonlySet<string> = new Set(["invalid_api_key", "account_deactivated"]);
const UNAVAILABLE_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/**
 * What an OpenAI error answer means, for key checks and the gateway alike. By status and
 * `error.code`/`error.type` first; message text only where OpenAI gives nothing else. An
 * unparsable body classifies by status alone.
 *
 * A 403 is `not_permitted` unless its code condemns the key (`account_deactivated`,
 * `invalid_api_key`): OpenAI answers 403 for a region it does not serve or a model the project may
 * not use, and the key still works for everything else. A 401 naming missing scopes is the same:
 * a restricted key used outside its permissions.
 * @see https://platform.openai.com/docs/guides/error-codes/api-errors
 */
export function classifyOpenAiError(status: number, body: Buffer): ProviderError {
  const error = readProviderError(body);
  const message = error?.message;
  const isCode = (codes: ReadonlySet<string>) =>
    (error?.code !== undefined && codes.has(error.code)) || (error?.type !== undefined && codes.has(error.type));
  if (isCode(NO_CREDIT_CODES)) return { kind: "no_credits", message };
  if (status === 401) return { kind: /missing scopes?/i.test(message ?? "") ? "not_permitted" : "invalid_key", message };
  if (status === 403) return { kind: isCode(DEAD_KEY_CODES) ? "invalid_key" : "not_permitted", message };
  if (status === 429) {
    // Last resort, for proxies that keep OpenAI's text but drop its code.
    const isQuota = error?.code === undefined && /exceeded your current quota/i.test(message ?? "");
    return { kind: isQuota ? "no_credits" : "rate_limited", message };
  }
  return { kind: UNAVAILABLE_STATUSES.has(status) ? "unavailable" : "refused", message };
}

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
  invalid_cursor: { type: "invalid_request_error", code: "invalid_cursor" },
  invalid_webhook_url: { type: "invalid_request_error", code: "invalid_webhook_url" },
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
  shutting_down: { type: "server_error", code: "shutting_down" },
  upstream_timeout: { type: "server_error", code: "upstream_timeout" },
};

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
