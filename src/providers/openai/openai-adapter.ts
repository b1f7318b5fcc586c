import { isRecord, stringField } from "../../lib/json-values.js";
import type { KeyCheckResult } from "../../lib/domain.js";
import type { Redacted } from "../../lib/redacted.js";
import { scrubAndTrim, scrubSecrets } from "../../lib/scrub.js";
import { checkCommonKeyFormat } from "../key-format.js";
import { describeNetworkFailure, isNetworkFailure, requestProviderJson } from "../provider-http.js";
import type { ProviderHttpResponse } from "../provider-http.js";
import type { KeyCheck, KeyFormatProblem, ProviderAdapter, ProviderAdapterOptions } from "../spec.js";

const PROVIDER_NAME = "OpenAI";
const UNCHECKED_MESSAGE = "The key could not be checked with OpenAI. Try again later.";

/**
 * The cheapest request that reveals an exhausted account: `GET /models` answers 200 for a key
 * whose organisation has no credit left, only inference says `insufficient_quota`.
 */
export const OPENAI_CREDIT_PROBE_BODY = {
  model: "gpt-4o-mini",
  max_tokens: 1,
  messages: [{ role: "user", content: "hi" }],
} as const;

/** Error codes/types OpenAI uses for an account that cannot pay for inference. */
const NO_CREDIT_CODES = new Set(["insufficient_quota", "billing_not_active"]);

/**
 * OpenAI adapter. `options.baseUrl` includes the API version (`https://api.openai.com/v1`), so the
 * models list is `${baseUrl}/models`.
 */
export function createOpenAiAdapter(options: ProviderAdapterOptions): ProviderAdapter {
  return {
    id: "openai",
    checkKeyFormat: checkOpenAiKeyFormat,
    // Belt and braces for the "never throws" contract (e.g. a bad timeout from a caller).
    checkKey: (apiKey, callOptions) =>
      checkOpenAiKey(options, apiKey, callOptions?.signal).catch(() => check("unreachable", UNCHECKED_MESSAGE)),
  };
}

/** Common checks, then OpenAI's prefixes. Messages never quote the key. */
export function checkOpenAiKeyFormat(key: string): KeyFormatProblem | undefined {
  const common = checkCommonKeyFormat(key);
  if (common !== undefined) return common;
  if (key.startsWith("sk-ant-")) {
    return {
      code: "other_provider",
      message: "This looks like an Anthropic key. Add it as an Anthropic key, or paste an OpenAI key (they start with sk-).",
    };
  }
  if (!key.startsWith("sk-")) {
    return {
      code: "wrong_prefix",
      message: "OpenAI API keys start with sk-. Copy the key again from the OpenAI dashboard.",
    };
  }
  if (key.startsWith("sk-admin-")) {
    return {
      code: "admin_key",
      message:
        "This is an OpenAI organisation admin key, which manages the organisation and cannot be used for requests. Create a project API key instead.",
    };
  }
  return undefined;
}

async function checkOpenAiKey(
  options: ProviderAdapterOptions,
  apiKey: Redacted<string>,
  callerSignal: AbortSignal | undefined,
): Promise<KeyCheck> {
  const key = apiKey.reveal();
  const formatProblem = checkCommonKeyFormat(key);
  // A key that cannot travel in a header would only produce an HTTP client error quoting it.
  if (formatProblem !== undefined && formatProblem.code !== "length") {
    return { result: "invalid", message: formatProblem.message };
  }
  // One deadline covers both requests, so a check never takes longer than `timeoutMs`.
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline]);
  const common = {
    dispatcher: options.dispatcher,
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${key}`, accept: "application/json" },
    timeoutMs: options.timeoutMs,
    signal,
  };
  const secrets = [key, options.baseUrl];

  const models = await requestProviderJson({ ...common, path: "/models", method: "GET" });
  if (isNetworkFailure(models)) {
    return { result: "unreachable", message: describeNetworkFailure(PROVIDER_NAME, models, options.timeoutMs) };
  }
  const modelsCheck = classifyOpenAiModelsResponse(models, secrets);
  if (modelsCheck !== "probe_completion") return modelsCheck;

  const completion = await requestProviderJson({
    ...common,
    path: "/chat/completions",
    method: "POST",
    body: OPENAI_CREDIT_PROBE_BODY,
  });
  // The key itself was accepted; a probe that fails for any other reason proves nothing about credit.
  if (isNetworkFailure(completion)) return validCheck();
  return classifyOpenAiCompletionResponse(completion, secrets);
}

/**
 * Maps the answer to `GET /models`. `probe_completion` means the completion probe decides: the
 * key was accepted (credit unknown), or it is a restricted key that may not list models.
 * @see https://platform.openai.com/docs/guides/error-codes/api-errors
 */
export function classifyOpenAiModelsResponse(
  response: ProviderHttpResponse,
  secrets: readonly string[],
): KeyCheck | "probe_completion" {
  const { status } = response;
  const error = readOpenAiError(response.body);
  if (status >= 200 && status < 300) return "probe_completion";
  if ((status === 401 || status === 403) && isMissingScope(error)) return "probe_completion";
  if (status === 401) {
    return check("invalid", providerMessage(error, secrets) ?? "OpenAI rejected the key.");
  }
  if (status === 403) {
    return check(
      "invalid",
      providerMessage(error, secrets) ?? "OpenAI refused this key: it is not allowed to use the API.",
    );
  }
  if (status === 429) return isNoCreditError(error) ? noCreditsCheck() : rateLimitedCheck();
  if (status >= 500) return check("unreachable", `OpenAI had a server error (HTTP ${status}). Try again later.`);
  return check("unreachable", `OpenAI gave an unexpected answer (HTTP ${status}); the key could not be checked.`);
}

/**
 * Maps the answer to the one-token completion probe. `insufficient_quota` means no credit; a
 * 401/403 means the key cannot run inference either (a restricted key without the scope, or a
 * key revoked between the two calls). Anything else proves nothing against a key the provider
 * already accepted, so the key counts as valid.
 */
export function classifyOpenAiCompletionResponse(response: ProviderHttpResponse, secrets: readonly string[]): KeyCheck {
  const error = readOpenAiError(response.body);
  if (response.status === 429 && isNoCreditError(error)) return noCreditsCheck();
  if (response.status === 401 || response.status === 403) {
    return check("invalid", providerMessage(error, secrets) ?? "OpenAI refused this key for model requests.");
  }
  return validCheck();
}

type OpenAiError = { message: string | undefined; type: string | undefined; code: string | undefined };

function readOpenAiError(body: unknown): OpenAiError {
  const error = isRecord(body) && isRecord(body.error) ? body.error : {};
  return { message: stringField(error, "message"), type: stringField(error, "type"), code: stringField(error, "code") };
}

function isNoCreditError(error: OpenAiError): boolean {
  if (error.code !== undefined && NO_CREDIT_CODES.has(error.code)) return true;
  if (error.type !== undefined && NO_CREDIT_CODES.has(error.type)) return true;
  // Last resort, for gateways that keep the text but drop the code.
  return error.code === undefined && /exceeded your current quota/i.test(error.message ?? "");
}

/**
 * Restricted project keys without the "Models: read" permission get a 401/403 naming the missing
 * scope (e.g. `api.model.read`) from `GET /models`, yet may run completions.
 */
function isMissingScope(error: OpenAiError): boolean {
  return /missing scopes?/i.test(error.message ?? "");
}

/** The provider's own wording, with the masked key fragment (and anything key-like) removed. */
function providerMessage(error: OpenAiError, secrets: readonly string[]): string | undefined {
  if (error.message === undefined || error.message.trim() === "") return undefined;
  return scrubAndTrim(scrubSecrets(error.message, secrets));
}

function validCheck(): KeyCheck {
  return check("valid", "OpenAI accepted the key.");
}

function noCreditsCheck(): KeyCheck {
  return check(
    "no_credits",
    "OpenAI accepted the key, but its account has no credit left (insufficient quota). Add credit in the OpenAI billing settings.",
  );
}

function rateLimitedCheck(): KeyCheck {
  return check("rate_limited", "OpenAI is rate-limiting this key right now. Try again in a moment.");
}

function check(result: KeyCheckResult, message: string): KeyCheck {
  return { result, message };
}


