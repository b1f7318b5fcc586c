import { performance } from "node:perf_hooks";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimateTokensOfBytes } from "../../src/lib/usage.js";
import { costOf, loadPriceTable } from "../../src/usage/pricing.js";
import {
  anthropicVia,
  auditTypes,
  createUsageBarrier,
  createUsers,
  drain,
  type GatewayKeyport,
  keyView,
  openAiDirect,
  openAiVia,
  settledUsage,
  startGateway,
  startStallingUpstream,
  type StallingUpstream,
  storeKey,
  type TestUser,
  upstreamRequests,
  waitForUsage,
} from "./gateway-support.js";

const CHAT = "/v1/chat/completions";
const MESSAGES = "/v1/messages";
const priceTable = loadPriceTable();
/** OpenAI's answer for an account without credit. */
const QUOTA_BODY = {
  error: {
    message: "You exceeded your current quota, please check your plan and billing details.",
    type: "insufficient_quota",
    param: null,
    code: "insufficient_quota",
  },
};

function chatBody(user: TestUser) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

function messagesBody(user: TestUser) {
  return { model: "claude-haiku-4-5", max_tokens: 32, messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

/** The error a promise rejects with (or `undefined` when it resolves). */
function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** Fails unless `text` holds no piece of the key: no six characters in a row, not its last four, no masked run. */
function expectNoFragmentOf(text: string, apiKey: string): void {
  expect(text).not.toContain(apiKey.slice(-4));
  for (let start = 0; start + 6 <= apiKey.length; start += 1) expect(text).not.toContain(apiKey.slice(start, start + 6));
  expect(text).not.toMatch(/\*{3,}/);
}

describe("gateway faults: retries, broken streams, revoked keys", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;

  beforeAll(async () => {
    keyport = await startGateway();
    newUser = createUsers(keyport, "faults");
    barrier = createUsageBarrier(keyport);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("a 500 then a success: the client gets the 200, the provider saw two attempts, one usage record", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "status", status: 500, match: { path: CHAT, key: key.apiKey } });

    const { data, response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    expect(response.status).toBe(200);
    expect(data.choices[0]?.message.content).toBe(`Mock reply: Hello from ${user.marker}`);
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(2);

    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: "ok", httpStatus: 200, source: "byok", keyId: key.id, inputTokens: data.usage?.prompt_tokens });
  });

  it("an Anthropic 529 (overloaded) then a success is retried the same way", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "anthropic");
    keyport.mock.injectFault({ kind: "status", status: 529, match: { path: MESSAGES, key: key.apiKey } });

    const message = await anthropicVia(keyport, user.token).messages.create(messagesBody(user));
    expect(message.stop_reason).toBe("end_turn");
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(2);
    expect(await settledUsage(keyport, barrier, user.owner, 1)).toHaveLength(1);
  });

  it("a 429 with retry-after: 1 then a success: the retry waits the second, the client gets the 200", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "status", status: 429, headers: { "retry-after": "1" }, match: { path: CHAT, key: key.apiKey } });

    const started = performance.now();
    const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    const elapsedMs = performance.now() - started;
    expect(response.status).toBe(200);
    expect(elapsedMs).toBeGreaterThanOrEqual(950);
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(2);
    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records.map((record) => record.status)).toEqual(["ok"]);
  });

  it("a 429 whose retry-after is beyond the cap is not waited for: the client gets it at once", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "status", status: 429, headers: { "retry-after": "30" }, times: 3, match: { path: CHAT, key: key.apiKey } });

    const started = performance.now();
    const refusal = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    const elapsedMs = performance.now() - started;
    keyport.mock.clearFaults();
    expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded" });
    if (refusal instanceof OpenAI.APIError) expect(refusal.headers.get("retry-after")).toBe("30");
    expect(elapsedMs).toBeLessThan(5_000);
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(1);
  });

  it("a connection reset before any answer is retried; resets on every attempt are a 502 in the provider's shape", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "reset", match: { path: CHAT, key: key.apiKey } });
    const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    expect(response.status).toBe(200);
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(2);

    keyport.mock.injectFault({ kind: "reset", times: 3, match: { path: CHAT, key: key.apiKey } });
    const failure = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect(failure).toMatchObject({ status: 502, error: { type: "server_error", code: "upstream_error" } });
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(5);

    const records = await settledUsage(keyport, barrier, user.owner, 2);
    expect(records.map((record) => [record.status, record.httpStatus])).toEqual([
      ["ok", 200],
      ["error", 502],
    ]);
  });

  it("a 429 insufficient_quota on the owner's key is not retried; the key is marked no_credits", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "status", status: 429, body: QUOTA_BODY, times: 3, match: { path: CHAT, key: key.apiKey } });

    const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    keyport.mock.clearFaults();
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(1);
    expect(await keyView(keyport, user, key.id)).toMatchObject({ status: "no_credits" });
    expect(await auditTypes(keyport, user)).toEqual(expect.arrayContaining(["key.no_credits", "key.fell_back_to_platform"]));
    // The call itself went on to the platform key (the default fallback).
    expect(response.headers.get("x-keyport-key-source")).toBe("platform");
  });

  it("a 429 insufficient_quota on the platform key is not retried and reaches the client as it was sent", async () => {
    const user = await newUser("premium");
    const platformKey = keyport.platformKeys.openai ?? "";
    keyport.mock.injectFault({ kind: "status", status: 429, body: QUOTA_BODY, times: 3, match: { path: CHAT, key: platformKey } });

    const refusal = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    keyport.mock.clearFaults();
    expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refusal).toMatchObject({ status: 429, error: QUOTA_BODY.error });
    expect(upstreamRequests(keyport.mock, { marker: user.marker })).toHaveLength(1);
  });

  it("retries used up (three 500s, two retries): the client gets the provider's own 500 body", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "status", status: 500, times: 3, match: { path: CHAT, key: key.apiKey } });

    const failure = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    const attempts = upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker });
    keyport.mock.injectFault({ kind: "status", status: 500, match: { path: CHAT, key: key.apiKey } });
    const direct = await failureOf(openAiDirect(keyport.mock, key.apiKey).chat.completions.create(chatBody(user)));

    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect(direct).toBeInstanceOf(OpenAI.InternalServerError);
    if (!(failure instanceof OpenAI.APIError) || !(direct instanceof OpenAI.APIError)) return;
    expect(failure.status).toBe(500);
    expect(failure.error).toEqual(direct.error);
    expect(failure.headers.get("x-keyport-key-source")).toBe("byok");
    expect(attempts).toHaveLength(3);

    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: "error", httpStatus: 500, costNanoUsd: null });
  });

  it("an OpenAI stream cut mid-way: the SDK's iteration throws, the record is partial and charged for what was streamed (estimated)", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "reset-mid-stream", afterEvents: 3, match: { path: CHAT, key: key.apiKey } });
    const body = { ...chatBody(user), stream: true as const };

    const received = await drain(await openAiVia(keyport, user.token).chat.completions.create(body));
    const direct = await drain(await openAiDirect(keyport.mock, key.apiKey).chat.completions.create(body));

    expect(received.error).toBeInstanceOf(OpenAI.APIError);
    expect(received.error).not.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(received.error).toMatchObject({ error: { type: "server_error", code: "upstream_error" } });
    // The events that did arrive came through as sent.
    expect(received.items.map((chunk) => chunk.choices[0]?.delta)).toEqual(direct.items.slice(0, 3).map((chunk) => chunk.choices[0]?.delta));
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker, path: CHAT })).toHaveLength(2);

    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records).toHaveLength(1);
    // The usage chunk comes last, so nothing was reported before the cut: the output is the two
    // words streamed (a delta is about a token), the input estimated from the request's bytes.
    const sent = upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker, path: CHAT })[0];
    const inputTokens = estimateTokensOfBytes(Buffer.byteLength(JSON.stringify(sent?.body)));
    expect(records[0]).toMatchObject({ status: "partial", streamed: true, inputTokens, outputTokens: 2 });
    const usage = { inputTokens, outputTokens: 2, cachedInputTokens: undefined, cacheWriteTokens: undefined };
    expect(records[0]?.costNanoUsd).toBe(costOf(usage, priceTable.pricesFor("openai", "gpt-4o-mini")));
    expect(records[0]?.costNanoUsd).toBeGreaterThan(0);
  });

  it("a stream cut before its first event: the client still gets an error event, and the record notes that bytes were sent", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "reset-mid-stream", afterEvents: 0, match: { path: CHAT, key: key.apiKey } });

    const { data: stream, response } = await openAiVia(keyport, user.token)
      .chat.completions.create({ ...chatBody(user), stream: true })
      .withResponse();
    const received = await drain(stream);
    expect(response.status).toBe(200);
    expect(received.items).toEqual([]);
    expect(received.error).toBeInstanceOf(OpenAI.APIError);
    expect(received.error).toMatchObject({ error: { code: "upstream_error" } });

    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records).toHaveLength(1);
    // Nothing streamed: no output; the input is the request's estimate (the provider read it).
    expect(records[0]).toMatchObject({ status: "partial", httpStatus: 200, streamed: true, outputTokens: 0 });
    expect(records[0]?.inputTokens).toBeGreaterThan(0);
    // The status line, headers and the error event reached the client: "nothing was sent" (null) is wrong.
    expect(records[0]?.ttfbMs).not.toBeNull();
  });

  it("an Anthropic stream cut mid-way: the SDK's iteration throws, the record keeps the input from message_start and counts the deltas streamed", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "anthropic");
    // message_start, content_block_start, ping and three deltas: the closing message_delta never comes.
    keyport.mock.injectFault({ kind: "reset-mid-stream", afterEvents: 6, match: { path: MESSAGES, key: key.apiKey } });
    const body = { ...messagesBody(user), stream: true as const };

    const received = await drain(await anthropicVia(keyport, user.token).messages.create(body));
    expect(received.error).toBeInstanceOf(Anthropic.APIError);
    expect(received.error).not.toBeInstanceOf(Anthropic.APIConnectionError);
    expect(received.error).toMatchObject({ error: { type: "error", error: { type: "api_error" } } });
    expect(received.items.map((event) => event.type)).toEqual(["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta"]);
    expect(received.items.some((event) => event.type === "message_stop")).toBe(false);

    const start = received.items[0];
    if (start?.type !== "message_start") throw new Error("no message_start");
    const usage = start.message.usage;
    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records).toHaveLength(1);
    const inputTokens = usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0);
    expect(inputTokens).toBeGreaterThan(0);
    // message_start says 1 output token; three deltas were streamed, about a token each.
    expect(usage.output_tokens).toBe(1);
    expect(records[0]).toMatchObject({ status: "partial", streamed: true, inputTokens, outputTokens: 3 });
    expect(records[0]?.costNanoUsd).toBe(
      costOf(
        { inputTokens, outputTokens: 3, cachedInputTokens: usage.cache_read_input_tokens ?? 0, cacheWriteTokens: usage.cache_creation_input_tokens ?? 0 },
        priceTable.pricesFor("anthropic", "claude-haiku-4-5"),
      ),
    );
  });

  it("a key revoked at the provider: the call succeeds on the platform key, the key turns invalid, both events are audited", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.setKey(key.apiKey, "invalid");

    const { data, response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    expect(data.choices[0]?.message.content).toBe(`Mock reply: Hello from ${user.marker}`);
    expect(response.headers.get("x-keyport-key-source")).toBe("platform");
    const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
    expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${key.apiKey}`, `Bearer ${keyport.platformKeys.openai}`]);

    const view = await keyView(keyport, user, key.id);
    expect(view).toMatchObject({ status: "invalid", isActive: true });
    expect(typeof view.statusDetail).toBe("string");
    expectNoFragmentOf(String(view.statusDetail), key.apiKey);
    const audit = await keyport.request("GET", "/api/v1/audit?limit=100", { token: user.token });
    const events = (audit.body.events as { type: string; keyId: string | null }[]).filter(
      (event) => event.type === "key.invalidated" || event.type === "key.fell_back_to_platform",
    );
    expect(events.map((event) => [event.type, event.keyId]).sort()).toEqual([
      ["key.fell_back_to_platform", key.id],
      ["key.invalidated", key.id],
    ]);
    expectNoFragmentOf(JSON.stringify(events), key.apiKey);

    // The next call goes straight to the platform key: the invalid key is not tried again.
    const next = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
    expect(next.response.headers.get("x-keyport-key-source")).toBe("platform");
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(1);

    const records = await settledUsage(keyport, barrier, user.owner, 2);
    expect(records.map((record) => [record.source, record.keyId, record.status])).toEqual([
      ["platform", null, "ok"],
      ["platform", null, "ok"],
    ]);
  });
});

describe("gateway faults: short upstream timeout, no retries, no fallback on a rejected key", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;

  beforeAll(async () => {
    keyport = await startGateway({
      env: { KEYPORT_UPSTREAM_HEADERS_TIMEOUT_MS: "300", KEYPORT_UPSTREAM_RETRIES: "0", KEYPORT_FALLBACK_ON_INVALID: "error" },
    });
    newUser = createUsers(keyport, "strict");
    barrier = createUsageBarrier(keyport);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("a provider that does not answer in time: 504 in OpenAI's shape, long before the provider would have answered", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.injectFault({ kind: "delay", ms: 3_000, match: { path: CHAT, key: key.apiKey } });

    const started = performance.now();
    const failure = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    const elapsedMs = performance.now() - started;
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect(failure).toMatchObject({ status: 504, error: { type: "server_error", code: "upstream_timeout" } });
    expect(elapsedMs).toBeLessThan(2_500);
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(1);
    const records = await settledUsage(keyport, barrier, user.owner, 1);
    expect(records.map((record) => [record.status, record.httpStatus])).toEqual([["error", 504]]);
  });

  it("a provider that does not answer in time: 504 in Anthropic's shape", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "anthropic");
    keyport.mock.injectFault({ kind: "delay", ms: 3_000, match: { path: MESSAGES, key: key.apiKey } });

    const started = performance.now();
    const failure = await failureOf(anthropicVia(keyport, user.token).messages.create(messagesBody(user)));
    expect(performance.now() - started).toBeLessThan(2_500);
    expect(failure).toBeInstanceOf(Anthropic.InternalServerError);
    expect(failure).toMatchObject({ status: 504, error: { type: "error", error: { type: "api_error" } } });
  });

  it("with KEYPORT_FALLBACK_ON_INVALID=error a revoked key's 401 reaches the client as an AuthenticationError", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.setKey(key.apiKey, "invalid");

    const failure = await failureOf(openAiVia(keyport, user.token).chat.completions.create(chatBody(user)));
    const direct = await failureOf(openAiDirect(keyport.mock, key.apiKey).chat.completions.create(chatBody(user)));
    expect(failure).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(direct).toBeInstanceOf(OpenAI.AuthenticationError);
    // The provider's own error, except the fragment of the key its message quotes: relayed errors are scrubbed.
    const directError = (direct as { error: { message: string; code: string; type: string } }).error;
    expect(directError.message).toContain(key.apiKey.slice(-4));
    expect(failure).toMatchObject({ status: 401, error: { code: directError.code, type: directError.type } });
    const relayedMessage = (failure as { error: { message: string } }).error.message;
    expect(relayedMessage).toMatch(/^Incorrect API key provided: \[redacted\]/);
    expect(relayedMessage).not.toContain(key.apiKey.slice(-4));
    expect(relayedMessage).not.toContain(key.apiKey.slice(0, 12));

    // Only the owner's key was tried; the platform key was not.
    expect(upstreamRequests(keyport.mock, { marker: user.marker }).map((request) => request.headers.authorization)).toEqual([
      `Bearer ${key.apiKey}`,
      `Bearer ${key.apiKey}`,
    ]);
    expect(await keyView(keyport, user, key.id)).toMatchObject({ status: "invalid" });
    const types = await auditTypes(keyport, user);
    expect(types).toContain("key.invalidated");
    expect(types).not.toContain("key.fell_back_to_platform");
  });
});

describe("gateway faults: the client goes away mid-stream", () => {
  let upstream: StallingUpstream;
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;

  beforeAll(async () => {
    upstream = await startStallingUpstream();
    keyport = await startGateway({ env: { OPENAI_BASE_URL: `${upstream.url}/v1`, ANTHROPIC_BASE_URL: upstream.url } });
    newUser = createUsers(keyport, "abort");
  });
  afterAll(async () => {
    await keyport.close();
    await upstream.close();
  });

  /** Resolves when the upstream saw its connection closed, or fails after a few seconds. */
  async function upstreamClosed(callIndex: number): Promise<void> {
    const call = upstream.calls[callIndex];
    if (call === undefined) throw new Error(`the upstream saw no call #${callIndex}`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error("the upstream request was never closed")), 5_000);
    });
    await Promise.race([call.closed, timeout]).finally(() => clearTimeout(timer));
  }

  it("aborting an OpenAI stream aborts the upstream request; the record says client_aborted and charges what was streamed", async () => {
    const user = await newUser("premium");
    const controller = new AbortController();
    const callIndex = upstream.calls.length;
    const stream = await openAiVia(keyport, user.token).chat.completions.create({ ...chatBody(user), stream: true }, { signal: controller.signal });
    const contents: string[] = [];
    const outcome = await failureOf(
      (async () => {
        for await (const chunk of stream) {
          contents.push(chunk.choices[0]?.delta.content ?? "");
          if (contents.includes("Hello")) controller.abort();
        }
      })(),
    );
    // The iteration stops at the abort (the SDK ends it quietly or with its abort error, never with more data).
    expect(contents).toEqual(["", "Hello"]);
    if (outcome !== undefined) expect(outcome).toBeInstanceOf(OpenAI.APIUserAbortError);

    await upstreamClosed(callIndex);
    const records = await waitForUsage(keyport, user.owner, 1);
    expect(records).toHaveLength(1);
    // One word streamed: one output token; the input estimated from the bytes sent upstream.
    const inputTokens = estimateTokensOfBytes(await (upstream.calls[callIndex]?.bodyBytes ?? Promise.resolve(0)));
    expect(inputTokens).toBeGreaterThan(0);
    expect(records[0]).toMatchObject({ status: "client_aborted", streamed: true, source: "platform", inputTokens, outputTokens: 1 });
    const usage = { inputTokens, outputTokens: 1, cachedInputTokens: undefined, cacheWriteTokens: undefined };
    expect(records[0]?.costNanoUsd).toBe(costOf(usage, priceTable.pricesFor("openai", "gpt-4o-mini")));
    expect(records[0]?.costNanoUsd).toBeGreaterThan(0);
  });

  it("aborting an Anthropic stream aborts the upstream request; the record keeps what was streamed", async () => {
    const user = await newUser("premium");
    const controller = new AbortController();
    const callIndex = upstream.calls.length;
    const stream = await anthropicVia(keyport, user.token).messages.create({ ...messagesBody(user), stream: true }, { signal: controller.signal });
    const types: string[] = [];
    const outcome = await failureOf(
      (async () => {
        for await (const event of stream) {
          types.push(event.type);
          if (event.type === "content_block_delta") controller.abort();
        }
      })(),
    );
    expect(types).toEqual(["message_start", "content_block_start", "content_block_delta"]);
    if (outcome !== undefined) expect(outcome).toBeInstanceOf(Anthropic.APIUserAbortError);

    await upstreamClosed(callIndex);
    const records = await waitForUsage(keyport, user.owner, 1);
    expect(records).toHaveLength(1);
    const usage = { inputTokens: upstream.anthropicInputTokens, outputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0 };
    expect(records[0]).toMatchObject({ status: "client_aborted", streamed: true, inputTokens: usage.inputTokens, outputTokens: 1 });
    // Charged for what was streamed.
    expect(records[0]?.costNanoUsd).toBe(costOf(usage, priceTable.pricesFor("anthropic", "claude-haiku-4-5")));
    expect(records[0]?.costNanoUsd).toBeGreaterThan(0);
  });
});
