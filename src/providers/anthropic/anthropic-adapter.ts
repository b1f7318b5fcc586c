import type { Redacted } from "../../lib/redacted.js";
import { headerValueOfKey } from "../gateway-common.js";
import { askProvider, check, checkOfError, type CheckWording, describeNetworkFailure, isCheckFailure } from "../key-check.js";
import { checkCommonKeyFormat } from "../key-format.js";
import type { KeyCheck, KeyFormatProblem, ProviderAdapter, ProviderAdapterOptions, RequestHeaderRules, ResponseHeaderRules } from "../spec.js";
import { ANTHROPIC_ENDPOINTS } from "./anthropic-endpoints.js";
import { classifyAnthropicError, renderAnthropicError, renderAnthropicStreamError } from "./anthropic-errors.js";

const WORDING: CheckWording = {
  name: "Anthropic",
  noCredits: "Anthropic accepted the key, but its credit balance is too low. Add credit under Plans & Billing in the Anthropic Console.",
};
const UNCHECKED_MESSAGE = "The key could not be checked with Anthropic. Try again later.";

/** The API version Keyport speaks for key checks. */
export const ANTHROPIC_VERSION = "2023-06-01";

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

/**
 * The Anthropic adapter. Its upstream client's base URL has no version path
 * (`https://api.anthropic.com`), so paths carry it (`/v1/models`).
 */
export function createAnthropicAdapter(options: ProviderAdapterOptions): ProviderAdapter {
  return {
    id: "anthropic",
    upstream: options.upstream,
    checkKeyFormat: checkAnthropicKeyFormat,
    // Belt and braces for the "never throws" contract (e.g. a bad timeout from a caller).
    checkKey: (apiKey, callOptions) => checkAnthropicKey(options, apiKey, callOptions?.signal).catch(() => check("unreachable", UNCHECKED_MESSAGE)),
    classifyError: classifyAnthropicError,
    endpoints: ANTHROPIC_ENDPOINTS,
    requestHeaders: REQUEST_HEADERS,
    responseHeaders: RESPONSE_HEADERS,
    authHeaders: (apiKey) => ({ "x-api-key": headerValueOfKey(apiKey) }),
    renderError: renderAnthropicError,
    renderStreamError: renderAnthropicStreamError,
  };
}

/** Common checks, then Anthropic's prefixes. Messages never quote the key. */
export function checkAnthropicKeyFormat(key: string): KeyFormatProblem | undefined {
  const common = checkCommonKeyFormat(key);
  if (common !== undefined) return common;
  if (key.startsWith("sk-ant-admin")) {
    return {
      code: "admin_key",
      message:
        "This is an Anthropic Admin API key, which manages the organisation and cannot be used for requests. Create a regular API key in the Anthropic Console instead.",
    };
  }
  if (key.startsWith("sk-ant-")) {
    if (key.startsWith("sk-ant-api")) return undefined;
    return { code: "wrong_prefix", message: "Anthropic API keys start with sk-ant-api. Copy an API key from the Anthropic Console." };
  }
  if (key.startsWith("sk-")) {
    return {
      code: "other_provider",
      message: "This looks like an OpenAI key. Add it as an OpenAI key, or paste an Anthropic key (they start with sk-ant-api).",
    };
  }
  return { code: "wrong_prefix", message: "Anthropic API keys start with sk-ant-api. Copy the key again from the Anthropic Console." };
}

/** `GET /v1/models` costs nothing; its answer is read by {@link classifyAnthropicError}, as the gateway reads it. */
async function checkAnthropicKey(options: ProviderAdapterOptions, apiKey: Redacted<string>, signal: AbortSignal | undefined): Promise<KeyCheck> {
  const key = apiKey.reveal();
  const formatProblem = checkCommonKeyFormat(key);
  // A key that cannot travel in a header would only produce an HTTP client error quoting it.
  if (formatProblem !== undefined && formatProblem.code !== "length") return check("invalid", formatProblem.message);
  const timeoutMs = options.keyCheckTimeoutMs;
  const answer = await askProvider(options.upstream, {
    method: "GET",
    path: "/v1/models",
    headers: { "x-api-key": headerValueOfKey(apiKey), "anthropic-version": ANTHROPIC_VERSION, accept: "application/json" },
    timeoutMs,
    signal,
  });
  if (isCheckFailure(answer)) return check("unreachable", describeNetworkFailure(WORDING.name, answer, timeoutMs));
  if (answer.status >= 200 && answer.status < 300) return check("valid", "Anthropic accepted the key.");
  return checkOfError(WORDING, answer.status, classifyAnthropicError(answer.status, answer.body), [key, options.baseUrl]);
}
