import { describe, expect, it } from "vitest";
import type { KeyCheckResult, ProviderId } from "../lib/domain.js";
import { createAnthropicAdapter } from "./anthropic/anthropic-adapter.js";
import { checkOfError } from "./key-check.js";
import { createOpenAiAdapter } from "./openai/openai-adapter.js";
import type { ProviderAdapter, ProviderErrorKind } from "./spec.js";

const noNetwork = { send: () => Promise.reject(new Error("no network in these tests")) };
const ADAPTERS: Record<ProviderId, ProviderAdapter> = {
  openai: createOpenAiAdapter({ baseUrl: "https://api.openai.example/v1", keyCheckTimeoutMs: 1, upstream: noNetwork }),
  anthropic: createAnthropicAdapter({ baseUrl: "https://api.anthropic.example", keyCheckTimeoutMs: 1, upstream: noNetwork }),
};
const WORDING = { name: "Provider", noCredits: "No credit." };

type Case = { provider: ProviderId; status: number; body: unknown; kind: ProviderErrorKind; check: KeyCheckResult };

/**
 * Every provider error body in PROVIDERS.md (the providers' real answers, from their docs, SDK
 * fixtures and issue trackers), plus the codes gateways elsewhere disable keys on, with what
 * each means. The key check and the gateway read them through the same `classifyError`; the
 * gateway's action per kind is tested in `gateway/steps/forward.test.ts`.
 */
const CASES: Case[] = [
  {
    provider: "openai",
    status: 401,
    body: {
      error: {
        message: "Incorrect API key provided: sk-5DJ2b***************************************7ckC. You can find your API key at https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    },
    kind: "invalid_key",
    check: "invalid",
  },
  {
    provider: "openai",
    status: 429,
    body: {
      error: {
        message:
          "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type: "insufficient_quota",
        param: null,
        code: "insufficient_quota",
      },
    },
    kind: "no_credits",
    check: "no_credits",
  },
  {
    provider: "openai",
    status: 429,
    body: {
      error: {
        message:
          "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199800, Requested 500. Please try again in 90ms.",
        type: "tokens",
        param: null,
        code: "rate_limit_exceeded",
      },
    },
    kind: "rate_limited",
    check: "rate_limited",
  },
  { provider: "openai", status: 403, body: { error: { message: "This account is deactivated.", type: "invalid_request_error", param: null, code: "account_deactivated" } }, kind: "invalid_key", check: "invalid" },
  { provider: "openai", status: 429, body: { error: { message: "Billing is not active.", type: "invalid_request_error", param: null, code: "billing_not_active" } }, kind: "no_credits", check: "no_credits" },
  {
    provider: "openai",
    status: 403,
    body: { error: { message: "Country, region, or territory not supported", type: "request_forbidden", param: null, code: "unsupported_country_region_territory" } },
    kind: "not_permitted",
    check: "valid",
  },
  { provider: "openai", status: 500, body: { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } }, kind: "unavailable", check: "unreachable" },
  {
    provider: "anthropic",
    status: 401,
    body: { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" }, request_id: "req_011CMock" },
    kind: "invalid_key",
    check: "invalid",
  },
  { provider: "anthropic", status: 401, body: { type: "error", error: { type: "authentication_error", message: "Invalid API key." } }, kind: "invalid_key", check: "invalid" },
  {
    provider: "anthropic",
    status: 400,
    body: {
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
      },
      request_id: "req_011CMock",
    },
    kind: "no_credits",
    check: "no_credits",
  },
  {
    provider: "anthropic",
    status: 403,
    body: { type: "error", error: { type: "permission_error", message: "Your API key does not have permission to use the specified resource." }, request_id: "req_1" },
    kind: "not_permitted",
    check: "valid",
  },
  { provider: "anthropic", status: 400, body: { type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" } }, kind: "refused", check: "unreachable" },
  { provider: "anthropic", status: 404, body: { type: "error", error: { type: "not_found_error", message: "model: claude-nope" } }, kind: "refused", check: "unreachable" },
  { provider: "anthropic", status: 413, body: { type: "error", error: { type: "request_too_large", message: "Request exceeds the maximum allowed number of bytes." } }, kind: "refused", check: "unreachable" },
  { provider: "anthropic", status: 429, body: { type: "error", error: { type: "rate_limit_error", message: "This request would exceed the rate limit for your organization." } }, kind: "rate_limited", check: "rate_limited" },
  { provider: "anthropic", status: 500, body: { type: "error", error: { type: "api_error", message: "Internal server error" } }, kind: "unavailable", check: "unreachable" },
  { provider: "anthropic", status: 529, body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, kind: "unavailable", check: "unreachable" },
  { provider: "anthropic", status: 402, body: { type: "error", error: { type: "billing_error", message: "Your account has a billing issue." } }, kind: "no_credits", check: "no_credits" },
];

describe("classifyError: every provider error body, one reading for key checks and the gateway", () => {
  it.each(CASES.map((entry) => [entry.provider, entry.status, JSON.stringify(entry.body).slice(0, 90), entry] as const))(
    "%s %i %s",
    (provider, status, _text, entry) => {
      const error = ADAPTERS[provider].classifyError(status, Buffer.from(JSON.stringify(entry.body)));
      expect(error.kind).toBe(entry.kind);
      expect(checkOfError(WORDING, status, error, []).result).toBe(entry.check);
    },
  );

  it("classifies by status alone when the body is not the provider's (a proxy's HTML page)", () => {
    const html = Buffer.from("<html>Bad gateway</html>");
    expect(ADAPTERS.openai.classifyError(401, html).kind).toBe("invalid_key");
    expect(ADAPTERS.anthropic.classifyError(401, html).kind).toBe("invalid_key");
    expect(ADAPTERS.openai.classifyError(502, html).kind).toBe("unavailable");
    expect(ADAPTERS.anthropic.classifyError(402, html).kind).toBe("no_credits");
    expect(ADAPTERS.anthropic.classifyError(403, html).kind).toBe("not_permitted");
    expect(ADAPTERS.openai.classifyError(403, html).kind).toBe("not_permitted");
  });

  it("classifies by code when the message is missing, and by OpenAI's quota wording when the code is", () => {
    expect(ADAPTERS.openai.classifyError(429, Buffer.from('{"error":{"code":"insufficient_quota"}}')).kind).toBe("no_credits");
    expect(ADAPTERS.openai.classifyError(429, Buffer.from('{"error":{"message":"You exceeded your current quota."}}')).kind).toBe("no_credits");
  });

  it("keeps the provider's words for the caller to scrub; the key check's message has no piece of the key", () => {
    const [invalid] = CASES;
    const error = ADAPTERS.openai.classifyError(401, Buffer.from(JSON.stringify(invalid?.body)));
    expect(error.message).toContain("sk-5DJ2b");
    const check = checkOfError(WORDING, 401, error, []);
    expect(check.message).toMatch(/^Incorrect API key provided: \[redacted\]/);
    expect(check.message).not.toContain("5DJ2b");
    expect(check.message).not.toContain("7ckC");
  });
});
