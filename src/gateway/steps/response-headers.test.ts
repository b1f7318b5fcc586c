import { describe, expect, it } from "vitest";
import type { ResponseHeaderRules } from "../../providers/spec.js";
import { relayedResponseHeaders } from "./response-headers.js";

const RULES: ResponseHeaderRules = { requestId: "x-request-id", relayed: ["openai-processing-ms"], rateLimitPrefixes: ["x-ratelimit-"] };
const UPSTREAM = {
  "content-type": "application/json",
  "content-length": "12",
  connection: "keep-alive",
  "transfer-encoding": "chunked",
  "set-cookie": ["a=1"],
  "x-request-id": "upstream-7",
  "openai-processing-ms": "31",
  "openai-organization": "org-operator",
  "openai-project": "proj_operator",
  "x-ratelimit-remaining-requests": "4999",
  "retry-after": "2",
  "x-echo": "sk-proj-secret",
};

describe("relayedResponseHeaders", () => {
  const ours = { "x-request-id": "req_1", "x-keyport-key-source": "byok" };

  it("relays only the allow-list with the owner's key: content type and length, request id, processing time, rate limits, retry-after", () => {
    expect(relayedResponseHeaders(UPSTREAM, RULES, { source: "byok", keepContentLength: true }, { ...ours })).toEqual({
      "content-type": "application/json",
      "content-length": "12",
      "openai-processing-ms": "31",
      "x-ratelimit-remaining-requests": "4999",
      "retry-after": "2",
      "x-upstream-request-id": "upstream-7",
      ...ours,
    });
  });

  it("relays no provider rate-limit header on a platform call, and drops content-length when asked", () => {
    expect(relayedResponseHeaders(UPSTREAM, RULES, { source: "platform", keepContentLength: false }, {})).toEqual({
      "content-type": "application/json",
      "openai-processing-ms": "31",
      "retry-after": "2",
      "x-upstream-request-id": "upstream-7",
    });
  });

  it("lets our headers win over the provider's of the same name", () => {
    expect(relayedResponseHeaders({ "content-type": "text/x-forged" }, RULES, { source: "byok", keepContentLength: true }, { "content-type": "ours" })).toEqual({
      "content-type": "ours",
    });
  });
});
