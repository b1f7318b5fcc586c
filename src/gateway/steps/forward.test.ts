import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { createCancellation } from "../../lib/cancellation.js";
import { redacted } from "../../lib/redacted.js";
import { createOpenAiAdapter } from "../../providers/openai/openai-adapter.js";
import type { ProviderErrorKind } from "../../providers/spec.js";
import { UpstreamFailure, type UpstreamBody, type UpstreamClient, type UpstreamRequest, type UpstreamResponse } from "../../providers/upstream-client.js";
import type { CallContext, Credential } from "../call-context.js";
import { allowedQuery, forward, type ForwardDeps } from "./forward.js";

type Scripted = { status: number; body?: unknown; headers?: IncomingHttpHeaders } | UpstreamFailure;

function bodyOf(bytes: Buffer): UpstreamBody {
  return {
    consume(sink) {
      if (bytes.length > 0) sink.onData(bytes);
      sink.onEnd();
    },
    resume() {},
    destroy() {},
  };
}

/** An upstream client that answers each attempt from the script, and remembers what it was sent. */
function scriptedUpstream(script: Scripted[]): UpstreamClient & { sent: UpstreamRequest[] } {
  const sent: UpstreamRequest[] = [];
  return {
    sent,
    send(request) {
      sent.push(request);
      const next = script.shift();
      if (next === undefined) return Promise.reject(new Error("script used up"));
      if (next instanceof UpstreamFailure) return Promise.reject(next);
      const bytes = Buffer.from(next.body === undefined ? "" : JSON.stringify(next.body));
      const response: UpstreamResponse = { status: next.status, headers: next.headers ?? {}, body: bodyOf(bytes) };
      return Promise.resolve(response);
    },
  };
}

const DEPS: ForwardDeps = {
  retryPolicy: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2, retryAfterCapMs: 50 },
  timeouts: { headersTimeoutMs: 1000, bodyTimeoutMs: 1000 },
  platformBetas: new Set(),
};
const CREDENTIAL: Credential = { source: "platform", keyId: null, reason: "no_own_key", apiKey: redacted("sk-proj-platform-key-0123456789") };

function callWith(upstream: UpstreamClient, url = "/openai/v1/chat/completions"): CallContext {
  const adapter = { ...createOpenAiAdapter({ baseUrl: "http://127.0.0.1:1/v1", keyCheckTimeoutMs: 1, upstream }), upstream };
  const endpoint = adapter.endpoints[0];
  if (endpoint === undefined) throw new Error("no endpoint");
  return {
    request: { id: "req_1", routePath: url, url, headers: { authorization: "Bearer eyJ.jwt.sig" }, ip: "", body: Buffer.from("{}"), log: console as never },
    response: {} as ServerResponse,
    adapter,
    endpoint,
    cancellation: createCancellation(),
    startedAtMs: 0,
    createdAt: new Date(),
    principal: undefined,
    prepared: { model: "gpt-4o-mini", stream: false, body: Buffer.from("{}"), hideUsageChunk: false },
    credential: CREDENTIAL,
    limitHeaders: {},
    reservation: undefined,
    journal: undefined,
    servedBy: undefined,
    outcome: undefined,
    upstreamMs: 0,
  };
}

const openAiError = (code: string, type = "invalid_request_error", message = "m") => ({ error: { message, type, param: null, code } });

describe("forward: what the gateway does with each kind of provider answer", () => {
  it.each<[string, Scripted, ProviderErrorKind, number]>([
    ["a rate limit", { status: 429, body: openAiError("rate_limit_exceeded", "requests") }, "rate_limited", 3],
    ["a provider failure", { status: 503 }, "unavailable", 3],
    ["an exhausted quota", { status: 429, body: openAiError("insufficient_quota", "insufficient_quota") }, "no_credits", 1],
    ["a revoked key", { status: 401, body: openAiError("invalid_api_key") }, "invalid_key", 1],
    ["a 403 for a region", { status: 403, body: openAiError("unsupported_country_region_territory") }, "not_permitted", 1],
    ["a bad request", { status: 400, body: openAiError("invalid_value") }, "refused", 1],
  ])("%s: classified once by the adapter, retried only when it is worth it", async (_name, answer, kind, attempts) => {
    const upstream = scriptedUpstream([answer, answer, answer]);
    const result = await forward(callWith(upstream), CREDENTIAL, DEPS);
    expect(result).toMatchObject({ kind: "error", error: { kind }, wentUpstream: true });
    expect(upstream.sent).toHaveLength(attempts);
  });

  it("returns the first success after retries", async () => {
    const upstream = scriptedUpstream([{ status: 500 }, new UpstreamFailure("connection", true), { status: 200, body: { ok: true } }]);
    expect(await forward(callWith(upstream), CREDENTIAL, DEPS)).toMatchObject({ kind: "response", wentUpstream: true });
    expect(upstream.sent).toHaveLength(3);
  });

  it("does not wait for a retry-after beyond the cap: the answer goes to the client", async () => {
    const upstream = scriptedUpstream([{ status: 429, headers: { "retry-after": "30" }, body: openAiError("rate_limit_exceeded") }]);
    expect(await forward(callWith(upstream), CREDENTIAL, DEPS)).toMatchObject({ kind: "error", status: 429 });
    expect(upstream.sent).toHaveLength(1);
  });

  it("says nothing went upstream when every connection was refused, and something did once any attempt was sent", async () => {
    const refused = () => new UpstreamFailure("connection", false);
    expect(await forward(callWith(scriptedUpstream([refused(), refused(), refused()])), CREDENTIAL, DEPS)).toEqual({
      kind: "failed",
      failure: "connection",
      wentUpstream: false,
    });
    const sentOnce = scriptedUpstream([refused(), new UpstreamFailure("timeout", true), refused()]);
    expect(await forward(callWith(sentOnce), CREDENTIAL, DEPS)).toEqual({ kind: "failed", failure: "connection", wentUpstream: true });
  });

  it("sends the endpoint's path, no query parameter the endpoint does not define, the key, and none of the caller's credentials", async () => {
    const upstream = scriptedUpstream([{ status: 200, body: {} }]);
    await forward(callWith(upstream, "/openai/v1/chat/completions?token=eyJ.jwt.sig&x=1"), CREDENTIAL, DEPS);
    const [sent] = upstream.sent;
    expect(sent?.path).toBe("/chat/completions");
    expect(sent?.headers.authorization).toBe(`Bearer ${CREDENTIAL.apiKey.reveal()}`);
    expect(JSON.stringify(sent?.headers)).not.toContain("eyJ");
  });
});

describe("allowedQuery", () => {
  it.each([
    ["/x", ["limit"], ""],
    ["/x?limit=2", [], ""],
    ["/x?token=abc&limit=2&after_id=a%20b&limit=3", ["limit", "after_id"], "?limit=2&after_id=a+b&limit=3"],
    ["/x?token=abc", ["limit"], ""],
    ["/x?", ["limit"], ""],
  ])("%s with %j → %s", (url, allowed, expected) => {
    expect(allowedQuery(url, allowed)).toBe(expected);
  });
});
