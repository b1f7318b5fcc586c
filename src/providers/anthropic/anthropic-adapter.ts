import { isRecord, stringField } from "../../lib/json-values.js";
import type { KeyCheckResult } from "../../lib/domain.js";
import type { Redacted } from "../../lib/redacted.js";
import { scrubAndTrim, scrubSecrets } from "../../lib/scrub.js";
import { checkCommonKeyFormat } from "../key-format.js";
import { describeNetworkFailure, isNetworkFailure, requestProviderJson } from "../provider-http.js";
import type { ProviderHttpResponse } from "../provider-http.js";
import type { KeyCheck, KeyFormatProblem, ProviderAdapter, ProviderAdapterOptions } from "../spec.js";

const PROVIDER_NAME = "Anthropic";
const UNCHECKED_MESSAGE = "The key could not be checked with Anthropic. Try again later.";

/** The API version Keyport speaks for key checks. */
export const ANTHROPIC_VERSION = "2023-06-01";

/**
 * Anthropic adapter. `options.baseUrl` has no version path (`https://api.anthropic.com`), so the
 * models list is `${baseUrl}/v1/models`.
 */
export function createAnthropicAdapter(options: ProviderAdapterOptions): ProviderAdapter {
  return {
    id: "anthropic",
    checkKeyFormat: checkAnthropicKeyFormat,
    // Belt and braces for the "never throws" contract (e.g. a bad timeout from a caller).
    checkKey: (apiKey, callOptions) =>
      checkAnthropicKey(options, apiKey, callOptions?.signal).catch(() => check("unreachable", UNCHECKED_MESSAGE)),
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
    return {
      code: "wrong_prefix",
      message: "Anthropic API keys start with sk-ant-api. Copy an API key from the Anthropic Console.",
    };
  }
  if (key.startsWith("sk-")) {
    return {
      code: "other_provider",
      message: "This looks like an OpenAI key. Add it as an OpenAI key, or paste an Anthropic key (they start with sk-ant-api).",
    };
  }
  return {
    code: "wrong_prefix",
    message: "Anthropic API keys start with sk-ant-api. Copy the key again from the Anthropic Console.",
  };
}

async function checkAnthropicKey(
  options: ProviderAdapterOptions,
  apiKey: Redacted<string>,
  signal: AbortSignal | undefined,
): Promise<KeyCheck> {
  const key = apiKey.reveal();
  const formatProblem = checkCommonKeyFormat(key);
  // A key that cannot travel in a header would only produce an HTTP client error quoting it.
  if (formatProblem !== undefined && formatProblem.code !== "length") {
    return { result: "invalid", message: formatProblem.message };
  }
  const response = await requestProviderJson({
    dispatcher: options.dispatcher,
    baseUrl: options.baseUrl,
    path: "/v1/models",
    method: "GET",
    headers: { "x-api-key": key, "anthropic-version": ANTHROPIC_VERSION, accept: "application/json" },
    timeoutMs: options.timeoutMs,
    ...(signal === undefined ? {} : { signal }),
  });
  if (isNetworkFailure(response)) {
    return { result: "unreachable", message: describeNetworkFailure(PROVIDER_NAME, response, options.timeoutMs) };
  }
  return classifyAnthropicModelsResponse(response, [key, options.baseUrl]);
}

/**
 * Maps the answer to `GET /v1/models`: by error type first, then status, then (for the 400 that
 * Anthropic uses for an empty credit balance) by message text.
 * @see https://docs.claude.com/en/api/errors
 */
export function classifyAnthropicModelsResponse(response: ProviderHttpResponse, secrets: readonly string[]): KeyCheck {
  const { status } = response;
  if (status >= 200 && status < 300) return check("valid", "Anthropic accepted the key.");
  const error = readAnthropicError(response.body);
  const wording = providerMessage(error, secrets);

  switch (error.type) {
    case "authentication_error":
      return check("invalid", wording ?? "Anthropic rejected the key.");
    case "permission_error":
      return check("invalid", wording ?? "Anthropic refused this key: it is not allowed to use the API.");
    case "billing_error":
      return noCreditsCheck();
    case "rate_limit_error":
      return rateLimitedCheck();
    default:
      break;
  }
  if (status === 401) return check("invalid", wording ?? "Anthropic rejected the key.");
  if (status === 403) return check("invalid", wording ?? "Anthropic refused this key: it is not allowed to use the API.");
  if (status === 402) return noCreditsCheck();
  if (status === 429) return rateLimitedCheck();
  if (status >= 500) {
    return check("unreachable", `Anthropic had a server error or was overloaded (HTTP ${status}). Try again later.`);
  }
  // Anthropic reports an empty balance as a plain 400 `invalid_request_error`; only the text tells.
  if (status === 400 && /credit balance/i.test(error.message ?? "")) return noCreditsCheck();
  return check("unreachable", `Anthropic gave an unexpected answer (HTTP ${status}); the key could not be checked.`);
}

type AnthropicError = { type: string | undefined; message: string | undefined };

function readAnthropicError(body: unknown): AnthropicError {
  const error = isRecord(body) && isRecord(body.error) ? body.error : {};
  return { type: stringField(error, "type"), message: stringField(error, "message") };
}

/** The provider's own wording, with anything key-like removed. */
function providerMessage(error: AnthropicError, secrets: readonly string[]): string | undefined {
  if (error.message === undefined || error.message.trim() === "") return undefined;
  return scrubAndTrim(scrubSecrets(error.message, secrets));
}

function noCreditsCheck(): KeyCheck {
  return check(
    "no_credits",
    "Anthropic accepted the key, but its credit balance is too low. Add credit under Plans & Billing in the Anthropic Console.",
  );
}

function rateLimitedCheck(): KeyCheck {
  return check("rate_limited", "Anthropic is rate-limiting this key right now. Try again in a moment.");
}

function check(result: KeyCheckResult, message: string): KeyCheck {
  return { result, message };
}


