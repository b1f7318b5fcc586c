import type { MockCall, MockReply } from "./mock-reply.js";
import { jsonReply } from "./mock-reply.js";

/** Status → error `type`, as Anthropic documents them. */
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

export function anthropicError(
  call: MockCall,
  status: number,
  type: string,
  message: string,
  extraHeaders: Record<string, string> = {},
): MockReply {
  const requestId = anthropicRequestId(call);
  const body = { type: "error", error: { type, message }, request_id: requestId };
  return jsonReply(status, { ...anthropicHeaders(call, false), ...extraHeaders }, body);
}

/** The reply Anthropic would send with this status, for status faults injected without a body. */
export function anthropicFaultReply(call: MockCall, status: number): MockReply {
  if (status === 429) return anthropicRateLimited(call);
  const type = ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
  const message = status === 529 ? "Overloaded" : status >= 500 ? "Internal server error" : `Request failed (${status})`;
  return anthropicError(call, status, type, message);
}

/** Headers every Anthropic answer carries; `isLimited` shows an exhausted window. */
export function anthropicHeaders(call: MockCall, isLimited: boolean): Record<string, string> {
  const reset = new Date(call.nowMs + 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const headers: Record<string, string> = {
    "request-id": anthropicRequestId(call),
    "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
  };
  for (const [name, limit] of [
    ["requests", 50],
    ["tokens", 100_000],
    ["input-tokens", 80_000],
    ["output-tokens", 20_000],
  ] as const) {
    headers[`anthropic-ratelimit-${name}-limit`] = String(limit);
    headers[`anthropic-ratelimit-${name}-remaining`] = isLimited ? "0" : String(limit - 1);
    headers[`anthropic-ratelimit-${name}-reset`] = reset;
  }
  return headers;
}

function anthropicRequestId(call: MockCall): string {
  return `req_011CMock${call.sequence.toString().padStart(14, "0")}`;
}

export function anthropicRateLimited(call: MockCall): MockReply {
  return jsonReply(
    429,
    { ...anthropicHeaders(call, true), "retry-after": "1" },
    {
      type: "error",
      error: {
        type: "rate_limit_error",
        message:
          "This request would exceed the rate limit for your organization of 50 requests per minute. Please try again later.",
      },
      request_id: anthropicRequestId(call),
    },
  );
}
