import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError, errorCodes } from "../../lib/errors.js";
import type { ErrorCode } from "../../lib/errors.js";
import { redacted } from "../../lib/redacted.js";
import { NO_USAGE } from "../../lib/usage.js";
import type { Usage } from "../../lib/usage.js";
import { startMockProvider } from "../../mock-provider/mock-provider.js";
import type { MockProvider } from "../../mock-provider/types.js";
import type { GatewayEndpoint, PreparedRequest, ProviderErrorResponse, StreamObserver } from "../spec.js";
import { createOpenAiAdapter } from "./openai-adapter.js";

const BASE_URL = "https://api.openai.example/v1";
const adapter = createOpenAiAdapter({
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

const CHAT_STREAM = fixtureBytes("chat-stream.chunks.txt");
const COMPAT_STREAM = fixtureBytes("chat-stream-usage-with-choices.chunks.txt");
const RESPONSES_STREAM = fixtureBytes("responses-stream.chunks.txt");
/** The one event of the captured chat stream that carries usage (empty `choices`). */
const USAGE_EVENT = CHAT_STREAM.toString("utf8")
  .split("\n\n")
  .find((event) => event.includes('"choices":[],'));
const CHAT_STREAM_WITHOUT_USAGE = Buffer.from(CHAT_STREAM.toString("utf8").replace(`${USAGE_EVENT}\n\n`, ""));
const CHAT_USAGE: Usage = { inputTokens: 14, outputTokens: 10, cachedInputTokens: 7, cacheWriteTokens: undefined };
const RESPONSES_USAGE: Usage = { inputTokens: 10, outputTokens: 10, cachedInputTokens: 5, cacheWriteTokens: undefined };

function body(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function prepared(name: string, bytes: Buffer | undefined): PreparedRequest {
  const result = gateway.prepareRequest(name, bytes);
  if (result instanceof AppError) throw new Error(`unexpected AppError ${result.code}`);
  return result;
}

/** Runs a whole stream through a fresh observer; `pushed` are the buffers `push` returned. */
function observe(name: string, chunks: readonly Buffer[], hideUsageChunk = false) {
  const observer: StreamObserver = gateway.createStreamObserver(name, { hideUsageChunk });
  const pushed = chunks.map((chunk) => observer.push(chunk));
  const output = Buffer.concat([...pushed, observer.flush()]);
  return { observer, pushed, output, usage: observer.usage(), model: observer.model() };
}

function everySplit(bytes: Buffer): Buffer[][] {
  return Array.from({ length: bytes.length + 1 }, (_, offset) => [bytes.subarray(0, offset), bytes.subarray(offset)]);
}

/** Field-by-field equality, cheap enough for thousands of splits (failures are listed by offset). */
function sameUsage(actual: Usage, expected: Usage): boolean {
  return (
    actual.inputTokens === expected.inputTokens &&
    actual.outputTokens === expected.outputTokens &&
    actual.cachedInputTokens === expected.cachedInputTokens &&
    actual.cacheWriteTokens === expected.cacheWriteTokens
  );
}

function toCrlf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString("utf8").replace(/\n/g, "\r\n"));
}

/** An `openai` client whose HTTP exchange is answered by `answer`; counts the requests it made. */
function sdkAgainst(answer: () => Response, maxRetries = 0) {
  const calls = { count: 0 };
  const client = new OpenAI({
    apiKey: "keyport-jwt",
    baseURL: "http://keyport.test/openai/v1",
    maxRetries,
    // The SDK logs the partial event it cannot parse in one test; the test asserts the failure itself.
    logLevel: "off",
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

function sseResponse(bytes: Buffer): Response {
  return new Response(new Uint8Array(bytes), { status: 200, headers: { "content-type": "text/event-stream" } });
}

const chatRequest = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }] };

describe("endpoint table", () => {
  it("lists each endpoint once, with Keyport's routes, OpenAI's path, no query parameters, and what is billed", () => {
    expect(adapter.endpoints.map((entry) => [entry.name, entry.method, entry.routes, entry.upstreamPath, entry.query, entry.isBilled])).toEqual([
      ["chat.completions", "POST", ["/openai/v1/chat/completions", "/v1/chat/completions"], "/chat/completions", [], true],
      ["embeddings", "POST", ["/openai/v1/embeddings", "/v1/embeddings"], "/embeddings", [], true],
      ["responses", "POST", ["/openai/v1/responses", "/v1/responses"], "/responses", [], true],
      ["models", "GET", ["/openai/v1/models", "/v1/models"], "/models", [], false],
    ]);
  });
});

describe("authHeaders and forwarded headers", () => {
  it("sends the key as a bearer token", () => {
    expect(gateway.authHeaders(redacted("sk-proj-abc_DEF-123"))).toEqual({ authorization: "Bearer sk-proj-abc_DEF-123" });
  });

  it("refuses a key a header cannot carry, without quoting it", () => {
    const key = "sk-proj-secretpart\r\nx-injected: 1";
    const error = (() => {
      try {
        gateway.authHeaders(redacted(key));
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(AppError);
    expect(String((error as AppError).message)).not.toContain("secretpart");
  });

  it("forwards OpenAI's account headers only as account headers, and the operator's on platform calls", () => {
    expect(adapter.requestHeaders).toEqual({ passed: [], account: ["openai-organization", "openai-project"], platformAccount: {}, beta: ["openai-beta"] });
    const configured = createOpenAiAdapter({ baseUrl: BASE_URL, keyCheckTimeoutMs: 1, upstream: adapter.upstream, platformAccount: { organization: "org-op", project: undefined } });
    expect(configured.requestHeaders.platformAccount).toEqual({ "openai-organization": "org-op" });
  });

  it("relays OpenAI's request id, processing time, and its x-ratelimit-* headers (on BYOK calls)", () => {
    expect(adapter.responseHeaders).toEqual({ requestId: "x-request-id", relayed: ["openai-processing-ms"], rateLimitPrefixes: ["x-ratelimit-"] });
  });
});

describe("prepareRequest", () => {
  it.each([
    ["a chat completion", "chat.completions", { ...chatRequest, max_tokens: 5 }, false],
    ["a chat stream that asked for usage", "chat.completions", { ...chatRequest, stream: true, stream_options: { include_usage: true } }, true],
    ["an embeddings call", "embeddings", { model: "text-embedding-3-small", input: "hi" }, false],
    ["a Responses API stream", "responses", { model: "gpt-4o-mini", input: "hi", stream: true }, true],
  ] as const)("passes %s on as the identical Buffer", (_name, endpoint, json, stream) => {
    const bytes = body(json);
    const result = prepared(endpoint, bytes);
    expect(result.body).toBe(bytes);
    expect(result).toMatchObject({ model: json.model, stream, hideUsageChunk: false });
  });

  it.each([
    ["no stream_options", {}],
    ["stream_options: null", { stream_options: null }],
    ["include_usage: false", { stream_options: { include_usage: false } }],
  ])("asks for usage on a chat stream with %s, and hides the extra chunk", (_name, extra) => {
    const request = { ...chatRequest, temperature: 0.2, stream: true, ...extra };
    const result = prepared("chat.completions", body(request));
    expect(result).toMatchObject({ model: "gpt-4o-mini", stream: true, hideUsageChunk: true });
    expect(JSON.parse(String(result.body))).toEqual({ ...request, stream_options: { include_usage: true } });
  });

  it("adds stream_options after the client's last member and leaves every other byte as it was", () => {
    // A seed beyond 2^53 would lose digits if the body were parsed and written out again.
    const text = '{\n  "model": "gpt-4o-mini",\n  "seed": 12345678901234567890,\n  "stream": true,\n  "messages": [{"role": "user", "content": "hi"}]\n}\n';
    const result = prepared("chat.completions", Buffer.from(text));
    expect(result).toMatchObject({ stream: true, hideUsageChunk: true });
    expect(String(result.body)).toBe(text.replace(/\n\}\n$/, '\n,"stream_options":{"include_usage":true}}\n'));
  });

  it("keeps the client's other stream_options fields", () => {
    const request = { ...chatRequest, stream: true, stream_options: { include_obfuscation: false } };
    const result = prepared("chat.completions", body(request));
    expect(JSON.parse(String(result.body)).stream_options).toEqual({ include_obfuscation: false, include_usage: true });
  });

  it("leaves a malformed stream_options for OpenAI to refuse", () => {
    const bytes = body({ ...chatRequest, stream: true, stream_options: "yes" });
    expect(prepared("chat.completions", bytes)).toMatchObject({ body: bytes, hideUsageChunk: false });
  });

  it("reads only a string model and only a literal true stream; embeddings never stream", () => {
    expect(prepared("chat.completions", body({ model: 4, stream: "true", messages: [] }))).toMatchObject({
      model: undefined,
      stream: false,
    });
    expect(prepared("embeddings", body({ model: "e", input: "x", stream: true })).stream).toBe(false);
  });

  it("sends GET models without a body", () => {
    expect(prepared("models", undefined)).toEqual({ model: undefined, stream: false, body: undefined, hideUsageChunk: false });
  });

  it.each([
    ["an array", "[1,2]"],
    ["a string", '"sk-proj-secret-body"'],
    ["a number", "42"],
    ["null", "null"],
    ["broken JSON", '{"model":"gpt-4o", "api_key": sk-proj-secret-body'],
    ["an empty body", ""],
  ])("refuses %s as a POST body, without quoting it", (_name, text) => {
    const result = gateway.prepareRequest("chat.completions", Buffer.from(text));
    expect(result).toBeInstanceOf(AppError);
    expect((result as AppError).code).toBe("invalid_request");
    expect((result as AppError).publicMessage).not.toContain("secret");
    expect(gateway.prepareRequest("embeddings", undefined)).toBeInstanceOf(AppError);
  });

  it("reads model and stream from the top level only, past a long conversation, and passes the bytes on", () => {
    const messages = Array.from({ length: 500 }, (_, index) => ({ role: "user", content: `turn ${index} {"model":"nested"}`, model: "nested" }));
    const bytes = Buffer.from(JSON.stringify({ messages, model: "gpt-4o", stream: false }));
    const result = prepared("chat.completions", bytes);
    expect(result).toEqual({ model: "gpt-4o", stream: false, body: bytes, hideUsageChunk: false });
    expect(result.body).toBe(bytes);
  });

  it("leaves a body malformed below its top level to the provider, untouched", () => {
    const bytes = Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}, tru]}');
    expect(prepared("chat.completions", bytes)).toEqual({ model: "gpt-4o", stream: false, body: bytes, hideUsageChunk: false });
  });

  it("completes a client's stream_options whose include_usage is not set, keeping the rest of the body", () => {
    const bytes = body({ model: "gpt-4o", stream: true, stream_options: { other: 1 }, messages: [{ role: "user", content: "x" }] });
    const result = prepared("chat.completions", bytes);
    expect(result.hideUsageChunk).toBe(true);
    expect(JSON.parse(String(result.body))).toEqual({ model: "gpt-4o", stream: true, stream_options: { other: 1, include_usage: true }, messages: [{ role: "user", content: "x" }] });
  });
});

describe("usageFromResponse", () => {
  it.each([
    ["a chat completion with cached tokens", "chat.completions", fixtureBytes("chat-completion.200.json"), CHAT_USAGE, "gpt-4o-mini"],
    [
      "embeddings (no output tokens)",
      "embeddings",
      fixtureBytes("embeddings.200.json"),
      { ...NO_USAGE, inputTokens: 4 },
      "text-embedding-3-small",
    ],
    ["a Responses API answer", "responses", fixtureBytes("responses.200.json"), RESPONSES_USAGE, "gpt-4o-mini"],
    ["a model list", "models", fixtureBytes("models-list.200.json"), NO_USAGE, undefined],
    ["malformed JSON", "chat.completions", Buffer.from('{"usage": {"prompt_tokens": 3'), NO_USAGE, undefined],
    ["a JSON array", "chat.completions", Buffer.from("[]"), NO_USAGE, undefined],
    ["usage: null", "chat.completions", body({ model: "m", usage: null }), NO_USAGE, "m"],
    [
      "counts that are not whole numbers",
      "chat.completions",
      body({ usage: { prompt_tokens: "3", completion_tokens: -1, prompt_tokens_details: null } }),
      NO_USAGE,
      undefined,
    ],
  ] as const)("reads %s", (_name, endpoint, bytes, usage, model) => {
    expect(gateway.usageFromResponse(endpoint, bytes)).toEqual({ usage, model });
  });
});

describe("chat stream observer without hiding", () => {
  it("returns every chunk itself and reads the usage chunk, whatever the split", () => {
    const failedSplits = everySplit(CHAT_STREAM).filter((chunks) => {
      const result = observe("chat.completions", chunks);
      return !(
        result.pushed.every((out, index) => out === chunks[index]) &&
        result.output.equals(CHAT_STREAM) &&
        sameUsage(result.usage, CHAT_USAGE) &&
        result.model === "gpt-4o-mini" &&
        !result.observer.sawError()
      );
    });
    expect(failedSplits.map((chunks) => chunks[0]?.length)).toEqual([]);
  });

  it("reads the same usage from CRLF lines in one-byte chunks", () => {
    const crlf = toCrlf(CHAT_STREAM);
    const result = observe("chat.completions", Array.from(crlf, (_, index) => crlf.subarray(index, index + 1)));
    expect(result.output.equals(crlf)).toBe(true);
    expect(result.usage).toEqual(CHAT_USAGE);
  });

  it("reports no usage for a stream cut off before its usage chunk", () => {
    const cut = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf(Buffer.from(USAGE_EVENT ?? "")) + 40);
    const result = observe("chat.completions", [cut]);
    expect(result.usage).toEqual(NO_USAGE);
    expect(result.output.equals(cut)).toBe(true);
  });

  it("still reads a usage chunk the stream ended without its blank line", () => {
    const unterminated = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf(Buffer.from("data: [DONE]")) - 2);
    expect(observe("chat.completions", [unterminated]).usage).toEqual(CHAT_USAGE);
  });

  it("counts the output deltas streamed (the estimate of a cut stream's output): text, refusal and tool arguments, never an empty role chunk", () => {
    const words = CHAT_STREAM.toString("utf8").match(/"content":"[^"]/g) ?? [];
    expect(words.length).toBeGreaterThan(3);
    expect(observe("chat.completions", [CHAT_STREAM]).observer.outputDeltas()).toBe(words.length);
    const firstTwoEvents = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf("\n\n", CHAT_STREAM.indexOf("\n\n") + 2) + 2);
    expect(observe("chat.completions", [firstTwoEvents]).observer.outputDeltas()).toBe(1);
    const tool = Buffer.from('data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a"}}]}}]}\n\n');
    const refusal = Buffer.from('data: {"choices":[{"index":0,"delta":{"refusal":"No"}}]}\n\n');
    const role = Buffer.from('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]}\n\n');
    expect(observe("chat.completions", [role, tool, refusal]).observer.outputDeltas()).toBe(2);
    expect(observe("responses", [RESPONSES_STREAM]).observer.outputDeltas()).toBe(10);
  });

  it("flags an error chunk inside a 200 stream", () => {
    const error = Buffer.from('data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n');
    const firstEvent = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf("\n\n") + 2);
    expect(observe("chat.completions", [firstEvent]).observer.sawError()).toBe(false);
    expect(observe("chat.completions", [firstEvent, error]).observer.sawError()).toBe(true);
  });
});

describe("chat stream observer hiding the usage chunk Keyport asked for", () => {
  it("removes exactly the usage chunk and still reads it, whatever the split", () => {
    expect(observe("chat.completions", [CHAT_STREAM], true).output.toString()).toBe(CHAT_STREAM_WITHOUT_USAGE.toString());
    const failedSplits = everySplit(CHAT_STREAM).filter((chunks) => {
      const result = observe("chat.completions", chunks, true);
      return !(result.output.equals(CHAT_STREAM_WITHOUT_USAGE) && sameUsage(result.usage, CHAT_USAGE));
    });
    expect(failedSplits.map((chunks) => chunks[0]?.length)).toEqual([]);
  });

  it("removes it from CRLF lines in one-byte chunks too", () => {
    const crlf = toCrlf(CHAT_STREAM);
    const result = observe("chat.completions", Array.from(crlf, (_, index) => crlf.subarray(index, index + 1)), true);
    expect(result.output.equals(toCrlf(CHAT_STREAM_WITHOUT_USAGE))).toBe(true);
    expect(result.usage).toEqual(CHAT_USAGE);
  });

  it("returns a chunk of whole, kept events as the identical Buffer", () => {
    const firstEvents = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf("\n\n", 600) + 2);
    const observer = gateway.createStreamObserver("chat.completions", { hideUsageChunk: true });
    expect(observer.push(firstEvents)).toBe(firstEvents);
  });

  it("produces a stream the openai SDK reads as the same answer without usage", async () => {
    const filtered = observe("chat.completions", [CHAT_STREAM], true).output;
    const read = async (bytes: Buffer) => {
      const { client } = sdkAgainst(() => sseResponse(bytes));
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of await client.chat.completions.create({ ...chatRequest, stream: true })) chunks.push(chunk);
      return chunks;
    };
    const original = await read(CHAT_STREAM);
    const hidden = await read(filtered);
    expect(hidden).toHaveLength(original.length - 1);
    expect(hidden).toEqual(original.filter((chunk) => chunk.choices.length > 0));
    expect(hidden.every((chunk) => chunk.usage === null)).toBe(true);
  });

  it("keeps a compatible upstream's last chunk that carries both choices and usage", () => {
    const usage = { inputTokens: 12, outputTokens: 3, cachedInputTokens: undefined, cacheWriteTokens: undefined };
    const failedSplits = everySplit(COMPAT_STREAM).filter((chunks) => {
      const result = observe("chat.completions", chunks, true);
      return !(
        result.output.equals(COMPAT_STREAM) &&
        sameUsage(result.usage, usage) &&
        result.model === "meta-llama/llama-3.1-8b-instruct"
      );
    });
    expect(failedSplits.map((chunks) => chunks[0]?.length)).toEqual([]);
  });

  it("gives back a held, unfinished last event at flush", () => {
    const observer = gateway.createStreamObserver("chat.completions", { hideUsageChunk: true });
    expect(observer.push(Buffer.from("data: [DONE]")).length).toBe(0);
    expect(observer.flush().toString()).toBe("data: [DONE]");
  });
});

describe("Responses API stream observer", () => {
  it("reads usage and model from response.completed, whatever the split", () => {
    const failedSplits = everySplit(RESPONSES_STREAM).filter((chunks) => {
      const result = observe("responses", chunks);
      return !(
        result.output.equals(RESPONSES_STREAM) &&
        sameUsage(result.usage, RESPONSES_USAGE) &&
        result.model === "gpt-4o-mini" &&
        !result.observer.sawError()
      );
    });
    expect(failedSplits.map((chunks) => chunks[0]?.length)).toEqual([]);
  });

  it("reports no usage when cut off before response.completed, and flags an error event", () => {
    const cut = RESPONSES_STREAM.subarray(0, RESPONSES_STREAM.indexOf("event: response.completed"));
    const error = Buffer.from('event: error\ndata: {"type":"error","code":"server_error","message":"boom","param":null}\n\n');
    const result = observe("responses", [cut, error]);
    expect(result.usage).toEqual(NO_USAGE);
    expect(result.observer.sawError()).toBe(true);
  });
});

describe("classifyError", () => {
  const error = (fields: Record<string, unknown>) => body({ error: { message: "x", param: null, ...fields } });
  it.each([
    ["401 invalid_api_key", 401, fixtureBytes("invalid-api-key.401.json"), "invalid_key"],
    ["401 of a restricted key missing a scope", 401, fixtureBytes("missing-scope.401.json"), "not_permitted"],
    ["401 with an HTML body", 401, Buffer.from("<html>Unauthorized</html>"), "invalid_key"],
    ["403 account_deactivated", 403, error({ type: "invalid_request_error", code: "account_deactivated" }), "invalid_key"],
    ["403 invalid_api_key type", 403, error({ type: "invalid_api_key", code: null }), "invalid_key"],
    ["403 unsupported region", 403, fixtureBytes("unsupported-region.403.json"), "not_permitted"],
    ["429 insufficient_quota", 429, fixtureBytes("insufficient-quota.429.json"), "no_credits"],
    ["429 with only the quota type", 429, error({ type: "insufficient_quota", code: null }), "no_credits"],
    ["429 billing_not_active", 429, error({ type: "invalid_request_error", code: "billing_not_active" }), "no_credits"],
    [
      "429 quota wording without a code",
      429,
      body({ error: { message: "You exceeded your current quota, please check your plan." } }),
      "no_credits",
    ],
    ["429 rate limit", 429, fixtureBytes("rate-limit.429.json"), "rate_limited"],
    ["429 with an empty body", 429, Buffer.alloc(0), "rate_limited"],
    ["500 server error", 500, fixtureBytes("server-error.500.json"), "unavailable"],
    ["502 from a proxy", 502, Buffer.from("<html>Bad gateway</html>"), "unavailable"],
    ["503", 503, Buffer.alloc(0), "unavailable"],
    ["504", 504, Buffer.alloc(0), "unavailable"],
    ["400 invalid request", 400, error({ type: "invalid_request_error", code: null }), "refused"],
    ["404 model not found", 404, error({ type: "invalid_request_error", code: "model_not_found" }), "refused"],
    ["501", 501, Buffer.alloc(0), "refused"],
  ] as const)("classifies %s", (_name, status, bytes, kind) => {
    expect(gateway.classifyError(status, bytes)).toBe(kind);
  });
});

describe("renderError", () => {
  it.each([
    ["invalid_request", 400, "invalid_request_error", "invalid_request"],
    ["unauthenticated", 401, "invalid_request_error", "invalid_api_key"],
    ["no_key_available", 403, "invalid_request_error", "no_key_available"],
    ["not_found", 404, "invalid_request_error", "not_found"],
    ["payload_too_large", 413, "invalid_request_error", "payload_too_large"],
    ["rate_limited", 429, "requests", "rate_limit_exceeded"],
    ["budget_exceeded", 429, "insufficient_quota", "budget_exceeded"],
    ["internal", 500, "server_error", "internal"],
    ["upstream_error", 502, "server_error", "upstream_error"],
    ["upstream_timeout", 504, "server_error", "upstream_timeout"],
    ["shutting_down", 503, "server_error", "shutting_down"],
  ] as const)("renders %s as %i %s/%s", (code, status, type, openAiCode) => {
    const error = new AppError(code, "Safe message.", { internal: { detail: "internal-only" } });
    const rendered = gateway.renderError(error);
    expect(rendered.status).toBe(status);
    expect(JSON.parse(rendered.body)).toEqual({ error: { message: "Safe message.", type, param: null, code: openAiCode } });
    expect(rendered.body).not.toContain("internal-only");
    expect(rendered.headers["content-type"]).toBe("application/json");
  });

  it("adds the error's headers, and x-should-retry: false only where retrying cannot help", () => {
    const limited = gateway.renderError(new AppError("rate_limited", "Slow down.", { headers: { "Retry-After": "7" } }));
    expect(limited.headers).toEqual({ "content-type": "application/json", "retry-after": "7" });
    for (const code of Object.keys(errorCodes) as ErrorCode[]) {
      const { status, retryable } = errorCodes[code];
      const expected = !retryable && (status === 429 || status >= 500) ? "false" : undefined;
      expect(gateway.renderError(new AppError(code, "m")).headers["x-should-retry"], code).toBe(expected);
    }
  });

  it.each([
    ["rate_limited", OpenAI.RateLimitError, 429],
    ["unauthenticated", OpenAI.AuthenticationError, 401],
    ["no_key_available", OpenAI.PermissionDeniedError, 403],
    ["invalid_request", OpenAI.BadRequestError, 400],
    ["upstream_timeout", OpenAI.InternalServerError, 504],
  ] as const)("makes the openai SDK raise its typed error for %s", async (code, errorClass, status) => {
    const rendered = gateway.renderError(new AppError(code, "Rendered by Keyport.", { headers: { "retry-after": "1" } }));
    const { client } = sdkAgainst(() => asResponse(rendered));
    const error = await client.chat.completions.create(chatRequest).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(errorClass);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(status);
    expect(apiError.message).toContain("Rendered by Keyport.");
    expect(apiError.headers?.get("retry-after")).toBe("1");
  });

  it("stops the openai SDK from retrying an exhausted budget", async () => {
    const rendered = gateway.renderError(new AppError("budget_exceeded", "Monthly budget reached."));
    const { client, calls } = sdkAgainst(() => asResponse(rendered), 2);
    const error = await client.chat.completions.create(chatRequest).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ code: "budget_exceeded", type: "insufficient_quota" });
    expect(calls.count).toBe(1);
  });
});

describe("renderStreamError", () => {
  const interrupted = new AppError("upstream_error", "The provider connection was interrupted mid-stream.");

  it("ends a stream so the openai SDK raises an APIError instead of a clean end", async () => {
    const firstEvents = CHAT_STREAM.subarray(0, CHAT_STREAM.indexOf("\n\n", 600) + 2);
    const { client } = sdkAgainst(() => sseResponse(Buffer.concat([firstEvents, gateway.renderStreamError(interrupted)])));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of await client.chat.completions.create({ ...chatRequest, stream: true })) {
        seen.push(chunk.choices[0]?.delta.content ?? "");
      }
    })();
    const error = await reading.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain("interrupted mid-stream");
    expect(seen.join("")).toBe("Mock reply:");
  });

  it("still fails the stream when the break fell inside an event", async () => {
    const partial = CHAT_STREAM.subarray(0, 500);
    const { client } = sdkAgainst(() => sseResponse(Buffer.concat([partial, gateway.renderStreamError(interrupted)])));
    const reading = (async () => {
      for await (const _chunk of await client.chat.completions.create({ ...chatRequest, stream: true })) {
        // drain
      }
    })();
    await expect(reading).rejects.toBeDefined();
  });
});

describe("against the mock provider", () => {
  let mock: MockProvider;
  beforeAll(async () => {
    mock = await startMockProvider({ keys: { "sk-proj-broke": "no_credits" }, acceptUnknownKeys: true });
  });
  afterAll(() => mock.close());

  async function send(name: string, json: unknown, key = "sk-proj-live") {
    const request = gateway.prepareRequest(name, body(json));
    if (request instanceof AppError) throw new Error(request.code);
    const response = await fetch(`${mock.openaiBaseUrl}${endpoint(name).upstreamPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...adapter.authHeaders(redacted(key)) },
      ...(request.body === undefined ? {} : { body: new Uint8Array(request.body) }),
    });
    return { adapter: gateway, request, response };
  }

  it("reads the same usage from a live stream as from the plain answer, and hides the chunk it asked for", async () => {
    const json = { ...chatRequest, messages: [{ role: "user", content: "Grüße aus Köln, 日本語 🎉" }], cache: true };
    const plain = await send("chat.completions", json);
    const expected = plain.adapter.usageFromResponse("chat.completions", Buffer.from(await plain.response.arrayBuffer()));
    expect(expected.usage.cachedInputTokens).toBeGreaterThan(0);

    const streamed = await send("chat.completions", { ...json, stream: true });
    expect(mock.requests().at(-1)?.body).toMatchObject({ stream_options: { include_usage: true } });
    const observer = streamed.adapter.createStreamObserver("chat.completions", streamed.request);
    const out: Buffer[] = [];
    for await (const chunk of streamed.response.body ?? []) out.push(observer.push(Buffer.from(chunk)));
    out.push(observer.flush());
    expect(observer.usage()).toEqual(expected.usage);
    expect(observer.model()).toBe("gpt-4o-mini");
    const text = Buffer.concat(out).toString("utf8");
    expect(text).not.toContain('"choices":[]');
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("classifies the provider's own answers for an exhausted account and an unknown key", async () => {
    const broke = await send("chat.completions", chatRequest, "sk-proj-broke");
    expect(broke.adapter.classifyError(broke.response.status, Buffer.from(await broke.response.arrayBuffer()))).toBe("no_credits");
    mock.injectFault({ kind: "status", status: 401 });
    const rejected = await send("chat.completions", chatRequest);
    expect(rejected.adapter.classifyError(rejected.response.status, Buffer.from(await rejected.response.arrayBuffer()))).toBe(
      "invalid_key",
    );
  });
});
