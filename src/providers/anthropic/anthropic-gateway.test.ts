import { readFileSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../lib/errors.js";
import { redacted } from "../../lib/redacted.js";
import { NO_USAGE } from "../../lib/usage.js";
import type { Usage } from "../../lib/usage.js";
import { startMockProvider } from "../../mock-provider/mock-provider.js";
import type { MockProvider } from "../../mock-provider/types.js";
import type { GatewayEndpoint, PreparedRequest, ProviderErrorResponse } from "../spec.js";
import { createAnthropicAdapter } from "./anthropic-adapter.js";

const BASE_URL = "https://api.anthropic.example";
const adapter = createAnthropicAdapter({
  baseUrl: BASE_URL,
  keyCheckTimeoutMs: 1000,
  upstream: { send: () => Promise.reject(new Error("no network in these tests")) },
});

function endpoint(name: string): GatewayEndpoint {
  const found = adapter.endpoints.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no endpoint ${name}`);
  return found;
}

/** The adapter's gateway side, addressed by endpoint name. */
const gateway = {
  prepareRequest: (name: string, bytes: Buffer | undefined) => endpoint(name).prepare(bytes),
  usageFromResponse: (name: string, bytes: Buffer) => endpoint(name).usageFromResponse(bytes),
  createStreamObserver: (name: string, options: { hideUsageChunk: boolean }) => endpoint(name).createStreamObserver(options),
  classifyError: (status: number, bytes: Buffer) => adapter.classifyError(status, bytes).kind,
  authHeaders: adapter.authHeaders,
  renderError: adapter.renderError,
  renderStreamError: adapter.renderStreamError,
};

function fixtureBytes(name: string): Buffer {
  return readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url));
}

/** Captured from the mock provider: two cumulative `message_delta`s (5, then 10). */
const STREAM = fixtureBytes("messages-stream.chunks.txt");
/** Written from Anthropic's docs: cache reads and writes, spaces after colons, non-ASCII text. */
const CACHE_STREAM = fixtureBytes("messages-stream-cache.chunks.txt");
const OVERLOADED_STREAM = fixtureBytes("messages-stream-overloaded.chunks.txt");
const STREAM_USAGE: Usage = { inputTokens: 14, outputTokens: 10, cachedInputTokens: 7, cacheWriteTokens: 0 };
const CACHE_USAGE: Usage = { inputTokens: 21 + 1024 + 188, outputTokens: 15, cachedInputTokens: 1024, cacheWriteTokens: 188 };

function body(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function prepared(name: string, bytes: Buffer | undefined): PreparedRequest {
  const result = gateway.prepareRequest(name, bytes);
  if (result instanceof AppError) throw new Error(`unexpected AppError ${result.code}`);
  return result;
}

function observe(chunks: readonly Buffer[]) {
  const observer = gateway.createStreamObserver("messages", { hideUsageChunk: false });
  const pushed = chunks.map((chunk) => observer.push(chunk));
  const tail = observer.flush();
  return { observer, pushed, tail, usage: observer.usage(), model: observer.model() };
}

function sameUsage(actual: Usage, expected: Usage): boolean {
  return (
    actual.inputTokens === expected.inputTokens &&
    actual.outputTokens === expected.outputTokens &&
    actual.cachedInputTokens === expected.cachedInputTokens &&
    actual.cacheWriteTokens === expected.cacheWriteTokens
  );
}

/** Offsets at which feeding `bytes` in two chunks does not pass every chunk through untouched with `usage`. */
function failingSplits(bytes: Buffer, usage: Usage): number[] {
  const failures: number[] = [];
  for (let offset = 0; offset <= bytes.length; offset += 1) {
    const chunks = [bytes.subarray(0, offset), bytes.subarray(offset)];
    const result = observe(chunks);
    const isUntouched = result.pushed.every((out, index) => out === chunks[index]) && result.tail.length === 0;
    if (!isUntouched || !sameUsage(result.usage, usage) || result.model !== "claude-sonnet-4-6") failures.push(offset);
  }
  return failures;
}

function toCrlf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString("utf8").replace(/\n/g, "\r\n"));
}

/** Stream text up to (not including) the first event of that name. */
function before(bytes: Buffer, marker: string, occurrence = 1): Buffer {
  let at = -1;
  for (let count = 0; count < occurrence; count += 1) at = bytes.indexOf(`event: ${marker}`, at + 1);
  return bytes.subarray(0, at);
}

function sdkAgainst(answer: () => Response, maxRetries = 0) {
  const calls = { count: 0 };
  const client = new Anthropic({
    apiKey: "keyport-jwt",
    baseURL: "http://keyport.test/anthropic",
    maxRetries,
    fetch: async () => {
      calls.count += 1;
      return answer();
    },
  });
  return { client, calls };
}

function asResponse(rendered: ProviderErrorResponse): Response {
  return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
}

const messageRequest = { model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };

describe("endpoint table, authHeaders and forwarded headers", () => {
  it("lists each endpoint once, with Keyport's routes, Anthropic's path and query parameters, and what is billed", () => {
    expect(adapter.endpoints.map((entry) => [entry.name, entry.method, entry.routes, entry.upstreamPath, entry.query, entry.isBilled])).toEqual([
      ["messages", "POST", ["/anthropic/v1/messages", "/v1/messages"], "/v1/messages", ["beta"], true],
      ["messages.count_tokens", "POST", ["/anthropic/v1/messages/count_tokens"], "/v1/messages/count_tokens", ["beta"], false],
      ["models", "GET", ["/anthropic/v1/models"], "/v1/models", ["limit", "after_id", "before_id", "beta"], false],
    ]);
  });

  it("sends the key as x-api-key, and refuses one a header cannot carry without quoting it", () => {
    expect(gateway.authHeaders(redacted("sk-ant-api03-abc_DEF-123AA"))).toEqual({ "x-api-key": "sk-ant-api03-abc_DEF-123AA" });
    expect(() => gateway.authHeaders(redacted("sk-ant-api03-secretpart\nx: 1"))).toThrow(AppError);
    expect(() => gateway.authHeaders(redacted("sk-ant-api03-secretpart\nx: 1"))).not.toThrow(/secretpart/);
  });

  it("forwards Anthropic's version header always and its beta header by the beta rules", () => {
    expect(adapter.requestHeaders).toEqual({ passed: ["anthropic-version"], account: [], platformAccount: {}, beta: ["anthropic-beta"] });
  });
});

describe("prepareRequest", () => {
  it.each([
    ["a message", "messages", messageRequest, false],
    ["a streamed message", "messages", { ...messageRequest, stream: true }, true],
    ["a token count", "messages.count_tokens", { model: "claude-sonnet-4-6", messages: messageRequest.messages }, false],
    ["a token count with a stray stream flag", "messages.count_tokens", { model: "claude-sonnet-4-6", stream: true }, false],
  ] as const)("passes %s on as the identical Buffer", (_name, endpoint, json, stream) => {
    const bytes = body(json);
    expect(prepared(endpoint, bytes)).toEqual({ model: "claude-sonnet-4-6", stream, body: bytes, hideUsageChunk: false });
  });

  it("reads model and stream from the top level only and leaves a body malformed deeper down to Anthropic", () => {
    const long = Buffer.from(JSON.stringify({ messages: Array.from({ length: 300 }, () => ({ role: "user", content: '"model": "x"', model: "x" })), model: "claude-sonnet-4-6", stream: true }));
    expect(prepared("messages", long)).toEqual({ model: "claude-sonnet-4-6", stream: true, body: long, hideUsageChunk: false });
    const malformed = Buffer.from('{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[nul]}');
    expect(prepared("messages", malformed)).toEqual({ model: "claude-sonnet-4-6", stream: false, body: malformed, hideUsageChunk: false });
  });

  it("sends GET models without a body", () => {
    expect(prepared("models", undefined)).toEqual({ model: undefined, stream: false, body: undefined, hideUsageChunk: false });
  });

  it.each([["[]"], ['"text"'], ["7"], ["null"], ["{not json"], [""]])("refuses %j as a POST body", (text) => {
    const result = gateway.prepareRequest("messages", Buffer.from(text));
    expect(result).toBeInstanceOf(AppError);
    expect((result as AppError).code).toBe("invalid_request");
  });
});

describe("usageFromResponse", () => {
  it.each([
    ["a message with cache reads", "messages", fixtureBytes("messages.200.json"), STREAM_USAGE, "claude-sonnet-4-6"],
    [
      "a message with cache writes",
      "messages",
      body({
        model: "claude-opus-4-6",
        usage: { input_tokens: 3, cache_creation_input_tokens: 2000, cache_read_input_tokens: 0, output_tokens: 50 },
      }),
      { inputTokens: 2003, outputTokens: 50, cachedInputTokens: 0, cacheWriteTokens: 2000 },
      "claude-opus-4-6",
    ],
    [
      "a message from an API version without cache fields",
      "messages",
      body({ model: "m", usage: { input_tokens: 9, output_tokens: 2 } }),
      { inputTokens: 9, outputTokens: 2, cachedInputTokens: undefined, cacheWriteTokens: undefined },
      "m",
    ],
    ["a token count", "messages.count_tokens", fixtureBytes("count-tokens.200.json"), { ...NO_USAGE, inputTokens: 14 }, undefined],
    ["a model list", "models", fixtureBytes("models-list.200.json"), NO_USAGE, undefined],
    ["malformed JSON", "messages", Buffer.from('{"usage":{"input_tokens":'), NO_USAGE, undefined],
    ["an error body", "messages", fixtureBytes("overloaded.529.json"), NO_USAGE, undefined],
  ] as const)("reads %s", (_name, endpoint, bytes, usage, model) => {
    expect(gateway.usageFromResponse(endpoint, bytes)).toEqual({ usage, model });
  });
});

describe("stream observer", () => {
  it("passes every chunk on untouched and keeps the latest cumulative output, whatever the split", () => {
    expect(failingSplits(STREAM, STREAM_USAGE)).toEqual([]);
  });

  it("adds cache reads and writes to the input, whatever the split, with LF or CRLF lines", () => {
    expect(failingSplits(CACHE_STREAM, CACHE_USAGE)).toEqual([]);
    expect(failingSplits(toCrlf(CACHE_STREAM), CACHE_USAGE)).toEqual([]);
  });

  it("reads the same usage from one-byte chunks", () => {
    const crlf = toCrlf(CACHE_STREAM);
    expect(observe(Array.from(crlf, (_, index) => crlf.subarray(index, index + 1))).usage).toEqual(CACHE_USAGE);
  });

  it("never sums output_tokens sent several times", () => {
    const delta = (outputTokens: number) =>
      Buffer.from(`event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":${outputTokens}}}\n\n`);
    const start = before(STREAM, "content_block_start");
    const result = observe([start, delta(3), delta(7), delta(7), delta(12)]);
    expect(result.usage).toEqual({ ...STREAM_USAGE, outputTokens: 12 });
  });

  it("takes later cumulative input counts from message_delta when it carries them", () => {
    const start = before(STREAM, "content_block_start");
    const delta = Buffer.from(
      'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"input_tokens":40,"cache_read_input_tokens":null,"output_tokens":20}}\n\n',
    );
    expect(observe([start, delta]).usage).toEqual({ inputTokens: 40 + 7 + 0, outputTokens: 20, cachedInputTokens: 7, cacheWriteTokens: 0 });
  });

  it.each([
    ["after the first message_delta", before(CACHE_STREAM, "message_delta", 2), { ...CACHE_USAGE, outputTokens: 6 }],
    ["inside the last message_delta", before(CACHE_STREAM, "message_stop").subarray(0, -20), { ...CACHE_USAGE, outputTokens: 6 }],
    ["before any message_delta", before(CACHE_STREAM, "message_delta"), { ...CACHE_USAGE, outputTokens: 1 }],
    ["inside message_start", CACHE_STREAM.subarray(0, 100), NO_USAGE],
  ])("reports what was seen when the stream is cut off %s", (_name, cut, usage) => {
    const result = observe([cut]);
    expect(result.usage).toEqual(usage);
    expect(result.pushed[0]).toBe(cut);
  });

  it("counts the content_block_delta events streamed (the estimate of a cut stream's output)", () => {
    const deltas = (STREAM.toString("utf8").match(/^event: content_block_delta\r?$/gm) ?? []).length;
    expect(deltas).toBeGreaterThan(3);
    expect(observe([STREAM]).observer.outputDeltas()).toBe(deltas);
    expect(observe([before(CACHE_STREAM, "message_delta")]).observer.outputDeltas()).toBe(
      (before(CACHE_STREAM, "message_delta").toString("utf8").match(/^event: content_block_delta\r?$/gm) ?? []).length,
    );
    expect(observe([before(STREAM, "content_block_delta")]).observer.outputDeltas()).toBe(0);
  });

  it("flags an error event inside a 200 stream and keeps the usage seen before it", () => {
    const result = observe([OVERLOADED_STREAM]);
    expect(result.observer.sawError()).toBe(true);
    expect(result.usage).toEqual({ inputTokens: 30, outputTokens: 1, cachedInputTokens: undefined, cacheWriteTokens: undefined });
    expect(observe([STREAM]).observer.sawError()).toBe(false);
  });

  it("gives a stream the Anthropic SDK reads to the same final message", async () => {
    const { client } = sdkAgainst(
      () => new Response(new Uint8Array(CACHE_STREAM), { status: 200, headers: { "content-type": "text/event-stream" } }),
    );
    const final = await client.messages.stream(messageRequest).finalMessage();
    expect(final.usage).toMatchObject({ input_tokens: 21, cache_read_input_tokens: 1024, output_tokens: 15 });
    expect(final.content[0]).toMatchObject({ type: "text", text: "Bonjour à tous — ça va ? 👋" });
  });
});

describe("classifyError", () => {
  const error = (type: string, message: string) => body({ type: "error", error: { type, message } });
  it.each([
    ["401 authentication_error", 401, fixtureBytes("authentication-error.401.json"), "invalid_key"],
    ["401 with an HTML body", 401, Buffer.from("<html>401</html>"), "invalid_key"],
    ["403 permission_error (not a dead key)", 403, fixtureBytes("permission-error.403.json"), "not_permitted"],
    ["400 credit balance too low", 400, fixtureBytes("credit-balance.400.json"), "no_credits"],
    ["400 credit balance in other casing", 400, error("invalid_request_error", "Your CREDIT BALANCE is empty."), "no_credits"],
    ["400 invalid request", 400, fixtureBytes("invalid-request.400.json"), "refused"],
    ["402 billing_error", 402, fixtureBytes("billing-error.402.json"), "no_credits"],
    ["402 without a body", 402, Buffer.alloc(0), "no_credits"],
    ["404 not_found_error", 404, error("not_found_error", "model: claude-x"), "refused"],
    ["413 request_too_large", 413, error("request_too_large", "Request exceeds the maximum size"), "refused"],
    ["429 rate_limit_error", 429, fixtureBytes("rate-limit.429.json"), "rate_limited"],
    ["500 api_error", 500, fixtureBytes("api-error.500.json"), "unavailable"],
    ["502 from a proxy", 502, Buffer.from("<html>Bad gateway</html>"), "unavailable"],
    ["503", 503, Buffer.alloc(0), "unavailable"],
    ["504", 504, Buffer.alloc(0), "unavailable"],
    ["529 overloaded_error", 529, fixtureBytes("overloaded.529.json"), "unavailable"],
    ["a 429 that mentions credit balance", 429, error("rate_limit_error", "credit balance check rate limited"), "rate_limited"],
  ] as const)("classifies %s", (_name, status, bytes, kind) => {
    expect(gateway.classifyError(status, bytes)).toBe(kind);
  });
});

describe("renderError", () => {
  it.each([
    ["invalid_request", 400, "invalid_request_error"],
    ["unauthenticated", 401, "authentication_error"],
    ["no_key_available", 403, "permission_error"],
    ["not_found", 404, "not_found_error"],
    ["payload_too_large", 413, "request_too_large"],
    ["rate_limited", 429, "rate_limit_error"],
    ["budget_exceeded", 429, "rate_limit_error"],
    ["internal", 500, "api_error"],
    ["upstream_error", 502, "api_error"],
    ["upstream_timeout", 504, "api_error"],
    ["shutting_down", 503, "overloaded_error"],
  ] as const)("renders %s as %i %s", (code, status, type) => {
    const rendered = gateway.renderError(new AppError(code, "Safe message.", { internal: { detail: "internal-only" } }));
    expect(rendered.status).toBe(status);
    expect(JSON.parse(rendered.body)).toEqual({ type: "error", error: { type, message: "Safe message." } });
    expect(rendered.body).not.toContain("internal-only");
  });

  it("sets retry-after from the error and x-should-retry: false on an exhausted budget only", () => {
    expect(gateway.renderError(new AppError("rate_limited", "m", { headers: { "retry-after": "3" } })).headers).toEqual({
      "content-type": "application/json",
      "retry-after": "3",
    });
    expect(gateway.renderError(new AppError("budget_exceeded", "m")).headers["x-should-retry"]).toBe("false");
    expect(gateway.renderError(new AppError("upstream_timeout", "m")).headers["x-should-retry"]).toBeUndefined();
  });

  it.each([
    ["rate_limited", Anthropic.RateLimitError, 429],
    ["unauthenticated", Anthropic.AuthenticationError, 401],
    ["no_key_available", Anthropic.PermissionDeniedError, 403],
    ["not_found", Anthropic.NotFoundError, 404],
    ["upstream_timeout", Anthropic.InternalServerError, 504],
  ] as const)("makes the Anthropic SDK raise its typed error for %s", async (code, errorClass, status) => {
    const rendered = gateway.renderError(new AppError(code, "Rendered by Keyport.", { headers: { "retry-after": "1" } }));
    const { client } = sdkAgainst(() => asResponse(rendered));
    const error = await client.messages.create(messageRequest).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(errorClass);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.status).toBe(status);
    expect(apiError.message).toContain("Rendered by Keyport.");
    expect(apiError.headers?.get("retry-after")).toBe("1");
  });

  it("stops the Anthropic SDK from retrying an exhausted budget", async () => {
    const { client, calls } = sdkAgainst(() => asResponse(gateway.renderError(new AppError("budget_exceeded", "Budget reached."))), 2);
    await expect(client.messages.create(messageRequest)).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    expect(calls.count).toBe(1);
  });
});

describe("renderStreamError", () => {
  it("ends a broken stream so the Anthropic SDK raises an APIError instead of a clean end", async () => {
    const interrupted = new AppError("upstream_error", "The provider connection was interrupted mid-stream.");
    const bytes = Buffer.concat([before(STREAM, "content_block_stop"), gateway.renderStreamError(interrupted)]);
    const { client } = sdkAgainst(() => new Response(new Uint8Array(bytes), { headers: { "content-type": "text/event-stream" } }));
    const error = await client.messages
      .stream(messageRequest)
      .finalMessage()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error).toMatchObject({ type: "api_error" });
    expect(String(error)).toContain("interrupted mid-stream");
  });
});

describe("against the mock provider", () => {
  let mock: MockProvider;
  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: true });
  });
  afterAll(() => mock.close());

  async function send(json: unknown) {
    const request = gateway.prepareRequest("messages", body(json));
    if (request instanceof AppError) throw new Error(request.code);
    const response = await fetch(`${mock.anthropicBaseUrl}${endpoint("messages").upstreamPath}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        ...gateway.authHeaders(redacted("sk-ant-api03-live")),
      },
      ...(request.body === undefined ? {} : { body: new Uint8Array(request.body) }),
    });
    return { adapter: gateway, request, response };
  }

  async function relay(json: unknown) {
    const { adapter, request, response } = await send(json);
    const observer = adapter.createStreamObserver("messages", request);
    let isBroken = false;
    try {
      for await (const chunk of response.body ?? []) observer.push(Buffer.from(chunk));
    } catch {
      isBroken = true;
    }
    observer.flush();
    return { observer, isBroken };
  }

  const json = { ...messageRequest, messages: [{ role: "user", content: "one two three four five six" }], cache: true };

  it("reads the same usage from a live stream as from the plain answer", async () => {
    const plain = await send(json);
    const expected = plain.adapter.usageFromResponse("messages", Buffer.from(await plain.response.arrayBuffer()));
    expect(expected.usage.cachedInputTokens).toBeGreaterThan(0);
    const { observer, isBroken } = await relay({ ...json, stream: true });
    expect(isBroken).toBe(false);
    expect(observer.usage()).toEqual(expected.usage);
    expect(observer.model()).toBe("claude-sonnet-4-6");
  });

  it("keeps the input and the output counted so far when the connection drops mid-stream", async () => {
    mock.injectFault({ kind: "reset-mid-stream", afterEvents: 4 });
    const { observer, isBroken } = await relay({ ...json, stream: true });
    expect(isBroken).toBe(true);
    const plain = await send(json);
    const whole = plain.adapter.usageFromResponse("messages", Buffer.from(await plain.response.arrayBuffer())).usage;
    expect(observer.usage()).toEqual({ ...whole, outputTokens: 1 });
  });
});
