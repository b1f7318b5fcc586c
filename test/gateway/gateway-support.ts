import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { expect } from "vitest";
import type { MockProvider, RecordedRequest } from "../../src/mock-provider/types.js";
import type { UsageRecord } from "../../src/store/ports.js";
import { startKeyport, type StartOptions, type TestKeyport } from "../support/harness.js";
import { anthropicKey, openAiKey } from "../support/keys.js";

/** Platform keys of one gateway test instance, registered as valid at its mock provider. */
export type PlatformKeys = { openai: string | undefined; anthropic: string | undefined };

export type GatewayKeyport = TestKeyport & { platformKeys: PlatformKeys };

/**
 * Starts Keyport with platform keys for both providers (unless switched off) and registers them
 * as valid at the mock. `env` is applied last, so it can override anything.
 */
export async function startGateway(
  options: { env?: Record<string, string>; platformKeys?: { openai?: boolean; anthropic?: boolean } } & Omit<StartOptions, "env"> = {},
): Promise<GatewayKeyport> {
  const { env = {}, platformKeys: wanted = {}, ...rest } = options;
  const platformKeys: PlatformKeys = {
    openai: wanted.openai === false ? undefined : openAiKey(),
    anthropic: wanted.anthropic === false ? undefined : anthropicKey(),
  };
  const keyport = await startKeyport({
    ...rest,
    env: {
      ...(platformKeys.openai === undefined ? {} : { PLATFORM_OPENAI_API_KEY: platformKeys.openai }),
      ...(platformKeys.anthropic === undefined ? {} : { PLATFORM_ANTHROPIC_API_KEY: platformKeys.anthropic }),
      ...env,
    },
  });
  if (platformKeys.openai !== undefined) keyport.mock.setKey(platformKeys.openai, "valid");
  if (platformKeys.anthropic !== undefined) keyport.mock.setKey(platformKeys.anthropic, "valid");
  return Object.assign(keyport, { platformKeys });
}

/** The OpenAI SDK pointed at Keyport (`/openai/v1` unless another prefix is given), the JWT as its key. */
export function openAiVia(keyport: TestKeyport, jwt: string, prefix = "/openai/v1"): OpenAI {
  return new OpenAI({ baseURL: `${keyport.url}${prefix}`, apiKey: jwt, maxRetries: 0 });
}

/** The Anthropic SDK pointed at Keyport (`/anthropic` unless another prefix is given). */
export function anthropicVia(keyport: TestKeyport, jwt: string, prefix = "/anthropic"): Anthropic {
  return new Anthropic({ baseURL: `${keyport.url}${prefix}`, apiKey: jwt, maxRetries: 0 });
}

/** The OpenAI SDK talking to the mock provider directly with a provider key. */
export function openAiDirect(mock: MockProvider, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: mock.openaiBaseUrl, apiKey, maxRetries: 0 });
}

/** The Anthropic SDK talking to the mock provider directly with a provider key. */
export function anthropicDirect(mock: MockProvider, apiKey: string): Anthropic {
  return new Anthropic({ baseURL: mock.anthropicBaseUrl, apiKey, maxRetries: 0 });
}

/** A test user: the JWT `sub`, the owner Keyport derives from it, and a word unique to it. */
export type TestUser = { sub: string; owner: string; token: string; marker: string };

/** Makes users with unique owners (`user:<prefix>-<n>-<time>`) for one test file. */
export function createUsers(keyport: TestKeyport, prefix: string): (tier: string) => Promise<TestUser> {
  let count = 0;
  return async (tier) => {
    count += 1;
    const sub = `${prefix}-${count}-${Date.now().toString(36)}`;
    return { sub, owner: `user:${sub}`, token: await keyport.token(sub, { tier }), marker: `marker-${sub}` };
  };
}

/** Stores a provider key for the user through the management API, after marking it valid at the mock. */
export async function storeKey(
  keyport: TestKeyport,
  user: TestUser,
  provider: "openai" | "anthropic",
  apiKey: string = provider === "openai" ? openAiKey() : anthropicKey(),
): Promise<{ id: string; apiKey: string }> {
  keyport.mock.setKey(apiKey, "valid");
  const response = await keyport.request("POST", "/api/v1/api-keys", { token: user.token, body: { provider, apiKey } });
  expect(response.status, response.text).toBe(201);
  expect(response.body.isActive).toBe(true);
  return { id: String(response.body.id), apiKey };
}

/** The management API's view of one key. */
export async function keyView(keyport: TestKeyport, user: TestUser, id: string): Promise<Record<string, unknown>> {
  const response = await keyport.request("GET", `/api/v1/api-keys/${id}`, { token: user.token });
  expect(response.status, response.text).toBe(200);
  return response.body as Record<string, unknown>;
}

/** The user's audit event types, newest first. */
export async function auditTypes(keyport: TestKeyport, user: TestUser): Promise<string[]> {
  const response = await keyport.request("GET", "/api/v1/audit?limit=100", { token: user.token });
  expect(response.status, response.text).toBe(200);
  return (response.body.events as { type: string }[]).map((event) => event.type);
}

/** What picks a test's own requests out of everything the mock saw. */
export type UpstreamFilter = {
  /** The provider key the request carried (`Authorization: Bearer` or `x-api-key`). */
  key?: string;
  /** A word the request body mentions (tests put a unique one in each prompt). */
  marker?: string;
  path?: string;
};

/** Requests the mock saw that match every given field of the filter, oldest first. */
export function upstreamRequests(mock: MockProvider, filter: UpstreamFilter): RecordedRequest[] {
  const { key, marker, path } = filter;
  return mock.requests().filter(
    (request) =>
      (key === undefined || request.headers.authorization === `Bearer ${key}` || request.headers["x-api-key"] === key) &&
      (marker === undefined || JSON.stringify(request.body ?? "").includes(marker)) &&
      (path === undefined || request.path === path),
  );
}

/** Asserts that no header of the given upstream requests carries the JWT or its signature. */
export function expectNoJwtUpstream(requests: readonly RecordedRequest[], jwt: string): void {
  const signature = jwt.split(".")[2] ?? jwt;
  expect(requests.length).toBeGreaterThan(0);
  for (const request of requests) {
    for (const [name, value] of Object.entries(request.headers)) {
      expect(value.includes(jwt) || value.includes(signature), `header ${name} carries the JWT`).toBe(false);
    }
  }
}

const RANGE = { from: "2000-01-01", to: "3000-01-01" };

/** Polls the store until the owner has at least `count` usage records (they are written in batches). */
export async function waitForUsage(keyport: TestKeyport, owner: string, count: number, timeoutMs = 5_000): Promise<UsageRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await keyport.app.store.usage.listByOwner(owner, RANGE);
    if (records.length >= count) return records;
    if (Date.now() > deadline) throw new Error(`expected ${count} usage records for ${owner}, found ${records.length}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Waits until every usage record queued so far has been written: records are written in the
 * order they were queued, so once a later call's record is stored, all earlier ones are too.
 * The later call is a model listing by a dedicated owner on its own stored OpenAI key.
 */
export function createUsageBarrier(keyport: TestKeyport): () => Promise<void> {
  let user: TestUser | undefined;
  let calls = 0;
  return async () => {
    if (user === undefined) {
      const sub = `usage-barrier-${Date.now().toString(36)}`;
      user = { sub, owner: `user:${sub}`, token: await keyport.token(sub, { tier: "premium" }), marker: sub };
      await storeKey(keyport, user, "openai");
    }
    calls += 1;
    const response = await keyport.request("GET", "/openai/v1/models", { token: user.token });
    expect(response.status, response.text).toBe(200);
    await waitForUsage(keyport, user.owner, calls);
  };
}

/** Every usage record of the owner, after waiting for `count` and for anything queued behind them. */
export async function settledUsage(
  keyport: TestKeyport,
  barrier: () => Promise<void>,
  owner: string,
  count: number,
): Promise<UsageRecord[]> {
  await waitForUsage(keyport, owner, count);
  await barrier();
  return keyport.app.store.usage.listByOwner(owner, RANGE);
}

/** An OpenAI chat completion or chunk without what differs per response (id, creation time). */
export function withoutOpenAiIds<T extends { id: string; created: number }>(value: T): Omit<T, "id" | "created"> {
  const { id: _id, created: _created, ...rest } = value;
  return rest;
}

/** An Anthropic message without its id. */
export function withoutMessageId<T extends { id: string }>(value: T): Omit<T, "id"> {
  const { id: _id, ...rest } = value;
  return rest;
}

/** An Anthropic stream event without the message id `message_start` carries. */
export function withoutEventIds(event: Anthropic.MessageStreamEvent): unknown {
  return event.type === "message_start" ? { ...event, message: withoutMessageId(event.message) } : event;
}

/** Reads a stream to its end; returns what arrived and the error that ended it, if one did. */
export async function drain<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error: unknown }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (error) {
    return { items, error };
  }
  return { items, error: undefined };
}

/** Seconds until the current wall-clock minute ends. */
export function secondsLeftInMinute(nowMs: number = Date.now()): number {
  return (60_000 - (nowMs % 60_000)) / 1000;
}

/** One streaming call the stalling upstream received. */
export type StalledCall = {
  path: string;
  /** Resolves when the caller closed the connection before the stream was finished. */
  closed: Promise<void>;
  /** The request body's length in bytes, once it has arrived. */
  bodyBytes: Promise<number>;
};

/** An upstream that starts a stream and then stalls, to see whether Keyport lets go of it. */
export type StallingUpstream = {
  url: string;
  calls: StalledCall[];
  /** Input tokens its Anthropic `message_start` reports. */
  anthropicInputTokens: number;
  close(): Promise<void>;
};

const STALLING_INPUT_TOKENS = 21;

/** A plain chat completion, at once. */
function answerNow(response: ServerResponse): void {
  const usage = { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 };
  const message = { role: "assistant", content: "Now", refusal: null };
  const choices = [{ index: 0, message, logprobs: null, finish_reason: "stop" }];
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ id: "chatcmpl-now", object: "chat.completion", created: 1, model: "gpt-4o-mini", choices, usage }));
}

/** The first events of a stream that then never goes on. */
function startStalledStream(path: string, response: ServerResponse): void {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;
  const event = (type: string, fields: Record<string, unknown>) => `event: ${type}\n${data({ type, ...fields })}`;
  if (path === "/v1/messages") {
    const usage = { input_tokens: STALLING_INPUT_TOKENS, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 };
    const message = { id: "msg_stall", type: "message", role: "assistant", model: "claude-haiku-4-5", content: [], stop_reason: null, stop_sequence: null, usage };
    response.write(event("message_start", { message }));
    response.write(event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }));
    response.write(event("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Hello" } }));
    return;
  }
  const chunk = (delta: Record<string, unknown>) => ({
    id: "chatcmpl-stall",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
    usage: null,
  });
  response.write(data(chunk({ role: "assistant", content: "" })));
  response.write(data(chunk({ content: "Hello" })));
}

/**
 * A provider stand-in (any key accepted) whose streams send their first events and then never
 * finish: a chat stream its role and first word; a messages stream `message_start`,
 * `content_block_start` and one delta. The mock provider sends a stream in one go, so a client
 * that stops reading midway could not be told apart from one that read everything. A chat call
 * with an `x-stall-answer-now` header gets an ordinary completion at once.
 */
export async function startStallingUpstream(): Promise<StallingUpstream> {
  const calls: StalledCall[] = [];
  const open = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    const body = new Promise<Buffer>((resolve) => {
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => resolve(Buffer.concat(chunks)));
    });
    const path = (request.url ?? "").split("?")[0] ?? "";
    const closed = new Promise<void>((resolve) => response.on("close", () => resolve()));
    calls.push({ path, closed, bodyBytes: body.then((bytes) => bytes.length) });
    open.add(response);
    response.on("close", () => open.delete(response));
    void body.then((bytes) => {
      if (bytes.includes("never answer")) return; // a call still waiting for its answer
      if (path === "/v1/chat/completions" && !bytes.includes('"stream":true')) answerNow(response);
      else startStalledStream(path, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    anthropicInputTokens: STALLING_INPUT_TOKENS,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of open) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
