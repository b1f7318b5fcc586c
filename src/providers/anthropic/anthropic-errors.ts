import type { AppError, ErrorCode } from "../../lib/errors.js";
import { providerErrorResponse, readProviderError, streamErrorEvent } from "../gateway-common.js";
import type { ProviderError, ProviderErrorResponse } from "../spec.js";

/** 529 is Anthropic's "overloaded". */
const UNAVAILABLE_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504, 529]);

/**
 * What an Anthropic error answer means, for key checks and the gateway alike: by `error.type`
 * first, then status, message text last (Anthropic reports an empty credit balance as a plain 400
 * whose only tell is the wording). An unparsable body classifies by status alone.
 *
 * A 403 `permission_error` is `not_permitted`, not `invalid_key`: the key is fine, it is just not
 * allowed this model or feature, and marking it invalid would take it away from every other call.
 * @see https://docs.claude.com/en/api/errors
 */
export function classifyAnthropicError(status: number, body: Buffer): ProviderError {
  const error = readProviderError(body);
  const message = error?.message;
  const type = error?.type;
  if (type === "authentication_error" || status === 401) return { kind: "invalid_key", message };
  if (type === "billing_error" || status === 402) return { kind: "no_credits", message };
  if (status === 400 && /credit balance/i.test(message ?? "")) return { kind: "no_credits", message };
  if (type === "permission_error" || status === 403) return { kind: "not_permitted", message };
  if (type === "rate_limit_error" || status === 429) return { kind: "rate_limited", message };
  if (type === "overloaded_error" || type === "api_error" || UNAVAILABLE_STATUSES.has(status)) return { kind: "unavailable", message };
  return { kind: "refused", message };
}

/**
 * Keyport's error codes as Anthropic error types, by status as Anthropic documents them: 400
 * `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404
 * `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 500 `api_error`,
 * `overloaded_error` (Anthropic's 529; Keyport uses it only for `shutting_down`, which ends a
 * stream cut at a shutdown: the SDKs and clients retry it elsewhere). Statuses Anthropic does not
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
  invalid_cursor: "invalid_request_error",
  invalid_webhook_url: "invalid_request_error",
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
  shutting_down: "overloaded_error",
};

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
