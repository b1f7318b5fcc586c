import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Usage } from "../../src/lib/usage.js";
import type { UsageRecord } from "../../src/store/ports.js";
import { costOf, loadPriceTable } from "../../src/usage/pricing.js";
import {
  anthropicDirect,
  anthropicVia,
  createUsageBarrier,
  createUsers,
  drain,
  expectNoJwtUpstream,
  type GatewayKeyport,
  keyView,
  openAiDirect,
  openAiVia,
  settledUsage,
  startGateway,
  storeKey,
  type TestUser,
  upstreamRequests,
  withoutEventIds,
  withoutMessageId,
  withoutOpenAiIds,
} from "./gateway-support.js";

const priceTable = loadPriceTable();

/** The price table's cost of what the provider reported, for comparison with the record. */
function tableCost(provider: "openai" | "anthropic", model: string, usage: Usage): number | null {
  return costOf(usage, priceTable.pricesFor(provider, model));
}

function openAiUsage(usage: OpenAI.CompletionUsage | undefined): Usage {
  expect(usage).toBeDefined();
  return {
    inputTokens: usage?.prompt_tokens,
    outputTokens: usage?.completion_tokens,
    cachedInputTokens: usage?.prompt_tokens_details?.cached_tokens,
    cacheWriteTokens: undefined,
  };
}

/** Keyport's usage from Anthropic's fields: its input counts cache reads and writes as well. */
function anthropicUsage(fields: { input: number; cacheRead: number; cacheWrite: number; output: number }): Usage {
  return {
    inputTokens: fields.input + fields.cacheRead + fields.cacheWrite,
    outputTokens: fields.output,
    cachedInputTokens: fields.cacheRead,
    cacheWriteTokens: fields.cacheWrite,
  };
}

function expectRecordUsage(record: UsageRecord | undefined, usage: Usage): void {
  expect(record).toMatchObject({
    inputTokens: usage.inputTokens ?? null,
    outputTokens: usage.outputTokens ?? null,
    cachedInputTokens: usage.cachedInputTokens ?? null,
    cacheWriteTokens: usage.cacheWriteTokens ?? null,
  });
}

function chatBody(user: TestUser, extra: string = "") {
  return {
    model: "gpt-4o-mini",
    messages: [{ role: "user" as const, content: `Please describe ${user.marker} in a few words ${extra}`.trim() }],
  };
}

function messagesBody(user: TestUser) {
  return {
    model: "claude-haiku-4-5",
    max_tokens: 64,
    messages: [{ role: "user" as const, content: `Please describe ${user.marker} in a few words` }],
  };
}

describe("gateway through the official SDKs", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;

  beforeAll(async () => {
    keyport = await startGateway();
    newUser = createUsers(keyport, "sdk");
    barrier = createUsageBarrier(keyport);
  });
  afterAll(async () => {
    await keyport.close();
  });

  function platformKey(provider: "openai" | "anthropic"): string {
    const key = keyport.platformKeys[provider];
    if (key === undefined) throw new Error("platform key missing");
    return key;
  }

  describe("OpenAI", () => {
    it("chat completion on the owner's key: same answer as the provider's, its key upstream, one exact usage record", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      const body = chatBody(user);

      const { data, response } = await openAiVia(keyport, user.token).chat.completions.create(body).withResponse();
      const upstream = upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker, path: "/v1/chat/completions" });
      const direct = await openAiDirect(keyport.mock, key.apiKey).chat.completions.create(body);

      // Ids and timestamps are per response (the mock numbers them); everything else is identical.
      expect(data.id).toMatch(/^chatcmpl-mock\d+$/);
      expect(withoutOpenAiIds(data)).toEqual(withoutOpenAiIds(direct));
      expect(data.choices[0]?.message.content).toBe(`Mock reply: Please describe ${user.marker} in a few words`);
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      expect(response.headers.get("ratelimit-limit")).toBeNull();

      expect(upstream).toHaveLength(1);
      expect(upstream[0]?.headers.authorization).toBe(`Bearer ${key.apiKey}`);
      expect(upstream[0]?.body).toEqual(body);
      expectNoJwtUpstream(upstream, user.token);

      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      const usage = openAiUsage(direct.usage);
      expect(records[0]).toMatchObject({
        owner: user.owner,
        source: "byok",
        keyId: key.id,
        provider: "openai",
        endpoint: "chat.completions",
        model: "gpt-4o-mini",
        streamed: false,
        status: "ok",
        httpStatus: 200,
        requestId: response.headers.get("x-request-id"),
      });
      expectRecordUsage(records[0], usage);
      expect(records[0]?.prices).toEqual(priceTable.pricesFor("openai", "gpt-4o-mini"));
      expect(records[0]?.costNanoUsd).toBe(tableCost("openai", "gpt-4o-mini", usage));
    });

    it("stream without include_usage: the client sees the provider's chunks and no usage chunk; Keyport asked for usage itself", async () => {
      const user = await newUser("premium");
      const body = { ...chatBody(user), stream: true as const };

      const { data: stream, response } = await openAiVia(keyport, user.token).chat.completions.create(body).withResponse();
      const received = await drain(stream);
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      const direct = await drain(await openAiDirect(keyport.mock, platformKey("openai")).chat.completions.create(body));
      const withUsage = await drain(
        await openAiDirect(keyport.mock, platformKey("openai")).chat.completions.create({ ...body, stream_options: { include_usage: true } }),
      );

      expect(received.error).toBeUndefined();
      expect(received.items.map(withoutOpenAiIds)).toEqual(direct.items.map(withoutOpenAiIds));
      expect(received.items.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe(
        `Mock reply: Please describe ${user.marker} in a few words`,
      );
      expect(received.items.at(-1)?.choices[0]?.finish_reason).toBe("stop");
      expect(received.items.some((chunk) => chunk.choices.length === 0 || (chunk.usage !== null && chunk.usage !== undefined))).toBe(false);
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");

      // What the provider was asked: the same request plus include_usage, on the platform key.
      expect(upstream).toHaveLength(1);
      expect(upstream[0]?.body).toEqual({ ...body, stream_options: { include_usage: true } });
      expect(upstream[0]?.headers.authorization).toBe(`Bearer ${platformKey("openai")}`);
      expectNoJwtUpstream(upstream, user.token);

      const usageChunk = withUsage.items.at(-1);
      expect(usageChunk?.choices).toEqual([]);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ source: "platform", keyId: null, streamed: true, status: "ok", endpoint: "chat.completions" });
      const usage = openAiUsage(usageChunk?.usage ?? undefined);
      expectRecordUsage(records[0], usage);
      expect(records[0]?.costNanoUsd).toBe(tableCost("openai", "gpt-4o-mini", usage));
    });

    it("stream with include_usage: the usage chunk arrives exactly as the provider sent it, byte for byte", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      const body = { ...chatBody(user), stream: true as const, stream_options: { include_usage: true } };

      const parsed = await openAiVia(keyport, user.token).chat.completions.create(body).withResponse();
      const received = await drain(parsed.data);
      const raw = await (await openAiVia(keyport, user.token).chat.completions.create(body).asResponse()).text();
      const upstream = upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker, path: "/v1/chat/completions" });
      const direct = await drain(await openAiDirect(keyport.mock, key.apiKey).chat.completions.create(body));
      const directRaw = await (await openAiDirect(keyport.mock, key.apiKey).chat.completions.create(body).asResponse()).text();

      expect(received.error).toBeUndefined();
      expect(received.items.map(withoutOpenAiIds)).toEqual(direct.items.map(withoutOpenAiIds));
      const usageChunk = received.items.at(-1);
      expect(usageChunk?.choices).toEqual([]);
      expect(usageChunk?.usage).toEqual(direct.items.at(-1)?.usage);
      expect(usageChunk?.usage?.prompt_tokens).toBeGreaterThan(0);
      const normalise = (text: string) => text.replace(/chatcmpl-mock\d+/g, "ID").replace(/"created":\d+/g, '"created":0');
      expect(normalise(raw)).toBe(normalise(directRaw));
      expect(raw.endsWith("data: [DONE]\n\n")).toBe(true);
      expect(parsed.response.headers.get("x-keyport-key-source")).toBe("byok");

      // The client's body went upstream untouched.
      expect(upstream).toHaveLength(2);
      for (const request of upstream) expect(request.body).toEqual(body);
      expectNoJwtUpstream(upstream, user.token);

      const records = await settledUsage(keyport, barrier, user.owner, 2);
      expect(records).toHaveLength(2);
      for (const record of records) {
        expect(record).toMatchObject({ source: "byok", keyId: key.id, streamed: true, status: "ok" });
        expectRecordUsage(record, openAiUsage(usageChunk?.usage ?? undefined));
      }
    });

    it("embeddings: the same vectors and usage as the provider's; input-only usage record", async () => {
      const user = await newUser("premium");
      const body = { model: "text-embedding-3-small", input: [`first ${user.marker}`, "second text to embed"] };

      const { data, response } = await openAiVia(keyport, user.token).embeddings.create(body).withResponse();
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      const direct = await openAiDirect(keyport.mock, platformKey("openai")).embeddings.create(body);

      expect(data).toEqual(direct);
      expect(data.data).toHaveLength(2);
      expect(data.data[0]?.embedding).toHaveLength(16);
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      expect(upstream).toHaveLength(1);
      expect(upstream[0]?.path).toBe("/v1/embeddings");
      expect(upstream[0]?.headers.authorization).toBe(`Bearer ${platformKey("openai")}`);
      expectNoJwtUpstream(upstream, user.token);

      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        source: "platform",
        keyId: null,
        endpoint: "embeddings",
        model: "text-embedding-3-small",
        streamed: false,
        status: "ok",
        inputTokens: direct.usage.prompt_tokens,
        outputTokens: null,
        cachedInputTokens: null,
      });
      // text-embedding-3-small lists at 0.02 USD per million tokens: 20 nano-USD a token.
      expect(records[0]?.costNanoUsd).toBe(direct.usage.prompt_tokens * 20);
      const usage: Usage = { inputTokens: direct.usage.prompt_tokens, outputTokens: undefined, cachedInputTokens: undefined, cacheWriteTokens: undefined };
      expect(records[0]?.costNanoUsd).toBe(tableCost("openai", "text-embedding-3-small", usage));
    });

    it("cached tokens are recorded and priced at the cache price (gpt-4o-mini checked by hand)", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      // `cache: true` is the mock's switch for reporting half the input as cached.
      const body: OpenAI.ChatCompletionCreateParamsNonStreaming & { cache: true } = {
        ...chatBody(user, "with a long enough prompt that half of it is served from the cache"),
        cache: true,
      };
      const completion = await openAiVia(keyport, user.token).chat.completions.create(body);
      const usage = completion.usage;
      const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
      expect(cached).toBeGreaterThan(0);

      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ keyId: key.id, inputTokens: usage?.prompt_tokens, cachedInputTokens: cached, outputTokens: usage?.completion_tokens });
      // List prices: 0.15 input, 0.075 cached input, 0.60 output USD per million tokens.
      const byHand = ((usage?.prompt_tokens ?? 0) - cached) * 150 + cached * 75 + (usage?.completion_tokens ?? 0) * 600;
      expect(records[0]?.costNanoUsd).toBe(byHand);
      expect(records[0]?.prices).toEqual({
        inputNanoUsdPerMTok: 150_000_000,
        cachedInputNanoUsdPerMTok: 75_000_000,
        outputNanoUsdPerMTok: 600_000_000,
        cacheWriteNanoUsdPerMTok: 150_000_000,
      });
    });

    it("a model without a price is recorded with cost null, not 0", async () => {
      const user = await newUser("premium");
      const completion = await openAiVia(keyport, user.token).chat.completions.create({ ...chatBody(user), model: "mock-unknown-model" });
      expect(completion.model).toBe("mock-unknown-model");
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ model: "mock-unknown-model", status: "ok", costNanoUsd: null, prices: null });
      expect(records[0]?.inputTokens).toBe(completion.usage?.prompt_tokens);
    });
  });

  describe("Anthropic", () => {
    it("message on the owner's key with cache reads: same answer as the provider's, input counts every input token", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "anthropic");
      const body: Anthropic.MessageCreateParamsNonStreaming & { cache: true } = { ...messagesBody(user), cache: true };

      const { data, response } = await anthropicVia(keyport, user.token).messages.create(body).withResponse();
      const upstream = upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker, path: "/v1/messages" });
      const direct = await anthropicDirect(keyport.mock, key.apiKey).messages.create(body);

      expect(data.id).toMatch(/^msg_mock\d+$/);
      expect(withoutMessageId(data)).toEqual(withoutMessageId(direct));
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      expect(upstream).toHaveLength(1);
      expect(upstream[0]?.headers["x-api-key"]).toBe(key.apiKey);
      expect(upstream[0]?.headers.authorization).toBeUndefined();
      expect(upstream[0]?.headers["anthropic-version"]).toBeDefined();
      expect(upstream[0]?.body).toEqual(body);
      expectNoJwtUpstream(upstream, user.token);

      const cacheRead = direct.usage.cache_read_input_tokens ?? 0;
      expect(cacheRead).toBeGreaterThan(0);
      const usage = anthropicUsage({
        input: direct.usage.input_tokens,
        cacheRead,
        cacheWrite: direct.usage.cache_creation_input_tokens ?? 0,
        output: direct.usage.output_tokens,
      });
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        source: "byok",
        keyId: key.id,
        provider: "anthropic",
        endpoint: "messages",
        model: "claude-haiku-4-5",
        streamed: false,
        status: "ok",
        httpStatus: 200,
      });
      expectRecordUsage(records[0], usage);
      expect(records[0]?.costNanoUsd).toBe(tableCost("anthropic", "claude-haiku-4-5", usage));
      // claude-haiku-4-5 lists at 1 USD input, 0.10 cache read, 5 output per million tokens.
      expect(records[0]?.costNanoUsd).toBe(direct.usage.input_tokens * 1_000 + cacheRead * 100 + direct.usage.output_tokens * 5_000);
    });

    it("stream on the platform key: the provider's events in order, usage from message_start and the last message_delta", async () => {
      const user = await newUser("premium");
      const body = { ...messagesBody(user), stream: true as const };

      const { data: stream, response } = await anthropicVia(keyport, user.token).messages.create(body).withResponse();
      const received = await drain(stream);
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      const direct = await drain(await anthropicDirect(keyport.mock, platformKey("anthropic")).messages.create(body));

      expect(received.error).toBeUndefined();
      expect(received.items.map(withoutEventIds)).toEqual(direct.items.map(withoutEventIds));
      // "Mock reply:" and the seven words of the prompt, one delta each.
      expect(received.items.map((event) => event.type)).toEqual([
        "message_start",
        "content_block_start",
        ...Array.from({ length: 9 }, () => "content_block_delta"),
        "content_block_stop",
        "message_delta",
        "message_delta",
        "message_stop",
      ]);
      const text = received.items.map((event) => (event.type === "content_block_delta" && event.delta.type === "text_delta" ? event.delta.text : "")).join("");
      expect(text).toBe(`Mock reply: Please describe ${user.marker} in a few words`);
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      expect(upstream).toHaveLength(1);
      expect(upstream[0]?.headers["x-api-key"]).toBe(platformKey("anthropic"));
      expect(upstream[0]?.body).toEqual(body);
      expectNoJwtUpstream(upstream, user.token);

      const start = received.items.find((event) => event.type === "message_start");
      const lastDelta = received.items.findLast((event) => event.type === "message_delta");
      if (start?.type !== "message_start" || lastDelta?.type !== "message_delta") throw new Error("stream lacks usage events");
      expect(lastDelta.delta.stop_reason).toBe("end_turn");
      const usage = anthropicUsage({
        input: start.message.usage.input_tokens,
        cacheRead: start.message.usage.cache_read_input_tokens ?? 0,
        cacheWrite: start.message.usage.cache_creation_input_tokens ?? 0,
        output: lastDelta.usage.output_tokens,
      });
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ source: "platform", keyId: null, streamed: true, status: "ok", endpoint: "messages" });
      // The deltas are cumulative snapshots: the record holds the last one, not their sum.
      expectRecordUsage(records[0], usage);
      expect(records[0]?.costNanoUsd).toBe(tableCost("anthropic", "claude-haiku-4-5", usage));
    });
  });

  it("the key's totals on the management API reflect its BYOK calls and nothing else", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    const before = await keyView(keyport, user, key.id);
    expect(before).toMatchObject({ totalRequests: 0, totalTokens: 0, estimatedCostUsd: 0, lastUsedAt: null });

    const openai = openAiVia(keyport, user.token);
    await openai.chat.completions.create(chatBody(user));
    await drain(await openai.chat.completions.create({ ...chatBody(user, "streamed"), stream: true }));
    await openai.embeddings.create({ model: "text-embedding-3-small", input: user.marker });
    // The owner has no Anthropic key: this call is on the platform key and adds nothing to the OpenAI key.
    await anthropicVia(keyport, user.token).messages.create(messagesBody(user));

    const records = await settledUsage(keyport, barrier, user.owner, 4);
    expect(records).toHaveLength(4);
    const own = records.filter((record) => record.keyId === key.id);
    expect(own).toHaveLength(3);
    const after = await keyView(keyport, user, key.id);
    const tokens = own.reduce((sum, record) => sum + (record.inputTokens ?? 0) + (record.outputTokens ?? 0), 0);
    const costNano = own.reduce((sum, record) => sum + (record.costNanoUsd ?? 0), 0);
    expect(tokens).toBeGreaterThan(0);
    expect(after).toMatchObject({ totalRequests: 3, totalTokens: tokens, estimatedCostUsd: costNano / 1e9 });
    expect(after.lastUsedAt).toBe(own.map((record) => record.createdAt).sort().at(-1));
  });

  it("the aliases /v1/chat/completions and /v1/messages serve the same calls", async () => {
    const user = await newUser("premium");
    const openaiKey = await storeKey(keyport, user, "openai");

    const completion = await openAiVia(keyport, user.token, "/v1").chat.completions.create(chatBody(user)).withResponse();
    const direct = await openAiDirect(keyport.mock, openaiKey.apiKey).chat.completions.create(chatBody(user));
    expect(withoutOpenAiIds(completion.data)).toEqual(withoutOpenAiIds(direct));
    expect(completion.response.headers.get("x-keyport-key-source")).toBe("byok");

    const message = await anthropicVia(keyport, user.token, "").messages.create(messagesBody(user)).withResponse();
    const directMessage = await anthropicDirect(keyport.mock, platformKey("anthropic")).messages.create(messagesBody(user));
    expect(withoutMessageId(message.data)).toEqual(withoutMessageId(directMessage));
    expect(message.response.headers.get("x-keyport-key-source")).toBe("platform");

    const records = await settledUsage(keyport, barrier, user.owner, 2);
    expect(records.map((record) => [record.provider, record.endpoint, record.source, record.status])).toEqual([
      ["openai", "chat.completions", "byok", "ok"],
      ["anthropic", "messages", "platform", "ok"],
    ]);
  });

  describe("typed SDK errors", () => {
    it("a bad token is an AuthenticationError (401) in both SDKs, and nothing goes upstream", async () => {
      const user = await newUser("premium");
      const [header, payload, signature = ""] = user.token.split(".");
      const tampered = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith("AA") ? "BB" : "AA"}`;

      const openAiError = await openAiVia(keyport, tampered).chat.completions.create(chatBody(user)).catch((error: unknown) => error);
      expect(openAiError).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(openAiError).toMatchObject({ status: 401, code: "invalid_api_key" });

      const anthropicError = await anthropicVia(keyport, "not-a-token").messages.create(messagesBody(user)).catch((error: unknown) => error);
      expect(anthropicError).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(anthropicError).toMatchObject({ status: 401, type: "authentication_error" });

      expect(upstreamRequests(keyport.mock, { marker: user.marker })).toEqual([]);
    });

    it("the tier's rate limit on the platform key is a RateLimitError (429) in both SDKs", async () => {
      const user = await newUser("community");
      const openai = openAiVia(keyport, user.token);
      // At most two windows' worth: a minute boundary passed mid-test resets the count once.
      let refusal: unknown;
      for (let call = 0; call < 21 && refusal === undefined; call += 1) {
        refusal = await openai.chat.completions.create(chatBody(user)).then(
          () => undefined,
          (error: unknown) => error,
        );
      }
      expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
      expect(refusal).toMatchObject({ status: 429, code: "rate_limit_exceeded", type: "requests" });

      const anthropicRefusal = await anthropicVia(keyport, user.token).messages.create(messagesBody(user)).catch((error: unknown) => error);
      expect(anthropicRefusal).toBeInstanceOf(Anthropic.RateLimitError);
      expect(anthropicRefusal).toMatchObject({ status: 429, type: "rate_limit_error" });
    });
  });
});

describe("gateway without platform keys", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;

  beforeAll(async () => {
    keyport = await startGateway({ platformKeys: { openai: false, anthropic: false } });
    newUser = createUsers(keyport, "nokey");
    barrier = createUsageBarrier(keyport);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("no key anywhere is a PermissionDeniedError (403) no_key_available in both SDKs; nothing upstream, nothing recorded", async () => {
    const user = await newUser("premium");

    const openAiError = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).catch((error: unknown) => error);
    expect(openAiError).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(openAiError).toMatchObject({ status: 403, code: "no_key_available" });

    const anthropicError = await anthropicVia(keyport, user.token).messages.create(messagesBody(user)).catch((error: unknown) => error);
    expect(anthropicError).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(anthropicError).toMatchObject({ status: 403, type: "permission_error" });
    expect(anthropicError).toMatchObject({ message: expect.stringMatching(/No API key available for anthropic/) });

    expect(upstreamRequests(keyport.mock, { marker: user.marker })).toEqual([]);
    await barrier();
    expect(await keyport.app.store.usage.listByOwner(user.owner, { from: "2000-01-01", to: "3000-01-01" })).toEqual([]);
  });
});
