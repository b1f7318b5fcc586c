import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startMockProvider } from "./mock-provider.js";
import type { MockProvider } from "./types.js";

const GOOD = `sk-proj-good${"a".repeat(40)}`;
const ANTHROPIC_HEADERS = { "anthropic-version": "2023-06-01" };
const PROMPT = "hello there my friend";

type Reply = { status: number; headers: Headers; body: any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read response fields freely

let mock: MockProvider;

async function call(path: string, init: { key?: string; headers?: Record<string, string>; body?: unknown; raw?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
  const body = init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${mock.url}${path}`, { method: body === undefined ? "GET" : "POST", headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // SSE or empty: keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

const anthropic = (path: string, key: string, body?: unknown) =>
  call(path, { headers: { ...ANTHROPIC_HEADERS, "x-api-key": key }, ...(body === undefined ? {} : { body }) });

/** `data:` payloads of an SSE body, with the `event:` name when there is one. */
function parseSse(text: string): Array<{ event: string | undefined; data: string }> {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((line) => line.startsWith("event: "))?.slice(7);
      const data = lines.find((line) => line.startsWith("data: "))?.slice(6) ?? "";
      return { event, data };
    });
}

beforeAll(async () => {
  mock = await startMockProvider({ keys: { [GOOD]: "valid" } });
});
beforeEach(() => mock.clearRequests());
afterAll(() => mock.close());

describe("Anthropic routes", () => {
  const KEY = `sk-ant-api03-${"e".repeat(93)}AA`;
  const messages = (extra: Record<string, unknown> = {}, key = KEY) =>
    anthropic("/v1/messages", key, { model: "claude-sonnet-4-6", max_tokens: 100, messages: [{ role: "user", content: PROMPT }], ...extra });

  beforeAll(() => {
    mock.setKey(KEY, "valid");
  });

  it("tells the two /v1/models apart by headers", async () => {
    const byApiKey = await anthropic("/v1/models", KEY);
    expect(byApiKey.body).toMatchObject({ has_more: false, first_id: "claude-sonnet-4-6" });
    expect(byApiKey.body.data[0].type).toBe("model");
    expect(byApiKey.headers.get("request-id")).toMatch(/^req_/);
    expect(byApiKey.headers.get("anthropic-ratelimit-requests-remaining")).toBe("49");
    const byBearer = await call("/v1/models", { key: KEY, headers: ANTHROPIC_HEADERS });
    expect(byBearer.body.has_more).toBe(false);
    const openAiShape = await call("/v1/models", { key: GOOD });
    expect(openAiShape.body.object).toBe("list");
  });

  it("answers a message with deterministic content and usage", async () => {
    const reply = await messages({ system: "be brief" });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      type: "message",
      role: "assistant",
      content: [{ type: "text", text: `Mock reply: ${PROMPT}` }],
      stop_reason: "end_turn",
      usage: { input_tokens: Math.ceil(`be brief\n${PROMPT}`.length / 4), output_tokens: 6, cache_read_input_tokens: 0 },
    });
  });

  it("stops at max_tokens and requires it", async () => {
    const reply = await messages({ max_tokens: 2 });
    expect(reply.body).toMatchObject({ stop_reason: "max_tokens", usage: { output_tokens: 2 } });
    const missing = await anthropic("/v1/messages", KEY, { model: "m", messages: [{ role: "user", content: "x" }] });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
  });

  it('moves half the input to cache reads when the body has "cache": true', async () => {
    const body = { model: "m", max_tokens: 5, messages: [{ role: "user", content: "y".repeat(400) }], cache: true };
    const reply = await anthropic("/v1/messages", KEY, body);
    expect(reply.body.usage).toMatchObject({ input_tokens: 50, cache_read_input_tokens: 50, cache_creation_input_tokens: 0 });
  });

  it("streams events whose cumulative usage must be kept, not summed", async () => {
    const plain = await messages();
    const events = parseSse((await messages({ stream: true })).body);
    const names = events.map((event) => event.event);
    expect(names[0]).toBe("message_start");
    expect(names.at(-1)).toBe("message_stop");
    expect(names.filter((name) => name === "content_block_delta").length).toBeGreaterThan(2);
    const payloads = events.map((event) => JSON.parse(event.data));
    expect(payloads.every((payload, index) => payload.type === names[index])).toBe(true);
    expect(payloads[0].message.usage).toMatchObject({ input_tokens: plain.body.usage.input_tokens, output_tokens: 1 });
    const deltas = payloads.filter((payload) => payload.type === "message_delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.at(-1).usage.output_tokens).toBe(plain.body.usage.output_tokens);
    const summed = deltas.reduce((sum, delta) => sum + delta.usage.output_tokens, 0);
    expect(summed).toBeGreaterThan(plain.body.usage.output_tokens);
    const text = payloads
      .filter((payload) => payload.type === "content_block_delta")
      .map((payload) => payload.delta.text)
      .join("");
    expect(text).toBe(plain.body.content[0].text);
  });

  it("counts tokens the way messages reports them", async () => {
    const body = { model: "m", messages: [{ role: "user", content: PROMPT }] };
    const counted = await anthropic("/v1/messages/count_tokens", KEY, body);
    expect(counted.body).toEqual({ input_tokens: (await messages()).body.usage.input_tokens });
  });

  it("answers an unknown key with authentication_error and a request id", async () => {
    const reply = await anthropic("/v1/messages", "sk-ant-api03-unknown", { model: "m", max_tokens: 1, messages: [] });
    expect(reply.status).toBe(401);
    expect(reply.body).toMatchObject({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
    expect(reply.body.request_id).toBe(reply.headers.get("request-id"));
  });

  it("answers an account without credit with the credit-balance 400 on every route", async () => {
    const key = `sk-ant-api03-${"f".repeat(93)}AA`;
    mock.setKey(key, "no_credits");
    for (const path of ["/v1/models", "/v1/messages", "/v1/messages/count_tokens"]) {
      const reply = await anthropic(path, key, path === "/v1/models" ? undefined : { model: "m", max_tokens: 1, messages: [] });
      expect(reply.status, path).toBe(400);
      expect(reply.body.error.message).toMatch(/credit balance is too low/);
    }
  });

  it("rate-limits with retry-after and exhausted headers", async () => {
    const key = `sk-ant-api03-${"g".repeat(93)}AA`;
    mock.setKey(key, "rate_limited");
    const reply = await messages({}, key);
    expect(reply.status).toBe(429);
    expect(reply.body.error.type).toBe("rate_limit_error");
    expect(reply.headers.get("retry-after")).toBe("1");
    expect(reply.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
  });
});
