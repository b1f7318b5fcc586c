import { redacted, type Redacted } from "../../lib/redacted.js";
import { headerValueOfKey } from "../gateway-common.js";
import { askProvider, check, checkOfError, type CheckWording, describeNetworkFailure, isCheckFailure } from "../key-check.js";
import { checkCommonKeyFormat } from "../key-format.js";
import type { KeyCheck, KeyFormatProblem, ProviderAdapter, ProviderAdapterOptions, RequestHeaderRules, ResponseHeaderRules } from "../spec.js";
import { OPENAI_ENDPOINTS } from "./openai-endpoints.js";
import { classifyOpenAiError, renderOpenAiError, renderOpenAiStreamError } from "./openai-errors.js";

const WORDING: CheckWording = {
  name: "OpenAI",
  noCredits: "OpenAI accepted the key, but its account has no credit left (insufficient quota). Add credit in the OpenAI billing settings.",
};
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

const RESPONSE_HEADERS: ResponseHeaderRules = Object.freeze({
  requestId: "x-request-id",
  relayed: Object.freeze(["openai-processing-ms"]),
  rateLimitPrefixes: Object.freeze(["x-ratelimit-"]),
});

/**
 * The OpenAI adapter. Its upstream client's base URL includes the API version
 * (`https://api.openai.com/v1`), so paths start after it (`/models`).
 */
export function createOpenAiAdapter(
  options: ProviderAdapterOptions & {
    /** The operator's organization and project, sent with the platform key (configuration). */
    platformAccount?: { organization: string | undefined; project: string | undefined };
  },
): ProviderAdapter {
  return {
    id: "openai",
    upstream: options.upstream,
    checkKeyFormat: checkOpenAiKeyFormat,
    // Belt and braces for the "never throws" contract (e.g. a bad timeout from a caller).
    checkKey: (apiKey, callOptions) => checkOpenAiKey(options, apiKey, callOptions?.signal).catch(() => check("unreachable", UNCHECKED_MESSAGE)),
    classifyError: classifyOpenAiError,
    endpoints: OPENAI_ENDPOINTS,
    requestHeaders: requestHeaderRules(options.platformAccount),
    responseHeaders: RESPONSE_HEADERS,
    authHeaders: (apiKey) => ({ authorization: `Bearer ${headerValueOfKey(apiKey)}` }),
    renderError: renderOpenAiError,
    renderStreamError: renderOpenAiStreamError,
  };
}

/** `openai-organization` / `openai-project` choose the account billed; `openai-beta` switches on betas. */
function requestHeaderRules(account: { organization: string | undefined; project: string | undefined } | undefined): RequestHeaderRules {
  const platformAccount: Record<string, string> = {};
  if (account?.organization !== undefined) platformAccount["openai-organization"] = account.organization;
  if (account?.project !== undefined) platformAccount["openai-project"] = account.project;
  return Object.freeze({
    passed: Object.freeze([]),
    account: Object.freeze(["openai-organization", "openai-project"]),
    platformAccount: Object.freeze(platformAccount),
    beta: Object.freeze(["openai-beta"]),
  });
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
    return { code: "wrong_prefix", message: "OpenAI API keys start with sk-. Copy the key again from the OpenAI dashboard." };
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

/**
 * `GET /models` tells a key OpenAI rejects; a one-token completion then tells an account without
 * credit. A key that may not list models (a restricted key without that scope) goes on to the
 * probe as well, which decides. Each answer is read by {@link classifyOpenAiError}, as the
 * gateway reads it.
 */
async function checkOpenAiKey(
  options: ProviderAdapterOptions,
  apiKey: Redacted<string>,
  callerSignal: AbortSignal | undefined,
): Promise<KeyCheck> {
  const key = apiKey.reveal();
  const formatProblem = checkCommonKeyFormat(key);
  // A key that cannot travel in a header would only produce an HTTP client error quoting it.
  if (formatProblem !== undefined && formatProblem.code !== "length") return check("invalid", formatProblem.message);
  // One deadline covers both requests, so a check never takes longer than `keyCheckTimeoutMs`.
  const timeoutMs = options.keyCheckTimeoutMs;
  const deadline = AbortSignal.timeout(Math.max(0, timeoutMs));
  const signal = callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline]);
  const headers = { authorization: `Bearer ${headerValueOfKey(redacted(key))}`, accept: "application/json" };
  const secrets = [key, options.baseUrl];

  const models = await askProvider(options.upstream, { method: "GET", path: "/models", headers, timeoutMs, signal });
  if (isCheckFailure(models)) return check("unreachable", describeNetworkFailure(WORDING.name, models, timeoutMs));
  if (!isSuccess(models.status)) {
    const error = classifyOpenAiError(models.status, models.body);
    if (error.kind !== "not_permitted") return checkOfError(WORDING, models.status, error, secrets);
  }

  const probe = await askProvider(options.upstream, { method: "POST", path: "/chat/completions", headers, json: OPENAI_CREDIT_PROBE_BODY, timeoutMs, signal });
  // The key was accepted (or may not list models); a probe without an answer proves nothing about credit.
  if (isCheckFailure(probe) || isSuccess(probe.status)) return check("valid", "OpenAI accepted the key.");
  const error = classifyOpenAiError(probe.status, probe.body);
  switch (error.kind) {
    case "invalid_key":
    case "no_credits":
    case "not_permitted":
      return checkOfError(WORDING, probe.status, error, secrets);
    default:
      // A rate limit or a server error on the probe says nothing against a key OpenAI accepted.
      return check("valid", "OpenAI accepted the key.");
  }
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}
