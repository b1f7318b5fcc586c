import type { MockCall, MockReply } from "./mock-reply.js";
import { jsonReply } from "./mock-reply.js";

/** OpenAI's masking in 401 messages: first 8 characters, asterisks, last 4. */
export function maskKey(key: string): string {
  if (key.length <= 12) return "*".repeat(key.length);
  return `${key.slice(0, 8)}${"*".repeat(key.length - 12)}${key.slice(-4)}`;
}

export type OpenAiErrorFields = { message: string; type: string; code: string | null; param?: string | null };

export function openAiError(
  call: MockCall,
  status: number,
  fields: OpenAiErrorFields,
  extraHeaders: Record<string, string> = {},
): MockReply {
  const body = { error: { message: fields.message, type: fields.type, param: fields.param ?? null, code: fields.code } };
  return jsonReply(status, { ...openAiHeaders(call, false), ...extraHeaders }, body);
}

/** Headers every OpenAI answer carries; `isLimited` shows an exhausted request window. */
export function openAiHeaders(call: MockCall, isLimited: boolean): Record<string, string> {
  return {
    "x-request-id": `req_${call.sequence.toString(16).padStart(32, "0")}`,
    "openai-organization": "org-mock",
    "openai-processing-ms": "1",
    "openai-version": "2020-10-01",
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-limit-tokens": "160000",
    "x-ratelimit-remaining-requests": isLimited ? "0" : "4999",
    "x-ratelimit-remaining-tokens": isLimited ? "0" : "159976",
    "x-ratelimit-reset-requests": isLimited ? "1s" : "12ms",
    "x-ratelimit-reset-tokens": isLimited ? "1s" : "9ms",
  };
}

/** The reply OpenAI would send with this status, for status faults injected without a body. */
export function openAiFaultReply(call: MockCall, status: number): MockReply {
  if (status === 429) return openAiRateLimited(call);
  if (status === 401) return openAiInvalidKey(call);
  const message =
    status >= 500
      ? "The server had an error while processing your request. Sorry about that!"
      : `The request failed with status ${status}.`;
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  return openAiError(call, status, { message, type, code: null });
}

export function openAiInsufficientQuota(call: MockCall): MockReply {
  return openAiError(call, 429, {
    message:
      "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    type: "insufficient_quota",
    code: "insufficient_quota",
  });
}

export function openAiRateLimited(call: MockCall): MockReply {
  const body = {
    error: {
      message:
        "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits to learn more.",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    },
  };
  return jsonReply(429, { ...openAiHeaders(call, true), "retry-after": "1" }, body);
}

/** OpenAI's 401: quotes a masked fragment of the key, exactly as the real API does. */
export function openAiInvalidKey(call: MockCall): MockReply {
  if (call.key === undefined) {
    return openAiError(call, 401, {
      message:
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.",
      type: "invalid_request_error",
      code: null,
    });
  }
  return openAiError(call, 401, {
    message: `Incorrect API key provided: ${maskKey(call.key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    type: "invalid_request_error",
    code: "invalid_api_key",
  });
}

/** OpenAI's 400 for a missing or malformed request parameter. */
export function openAiInvalidParameter(call: MockCall, message: string, param: string): MockReply {
  return openAiError(call, 400, { message, type: "invalid_request_error", code: null, param });
}
