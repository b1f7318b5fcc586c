import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startMockProvider } from "./mock-provider.js";
import type { MockProvider } from "./types.js";

const GOOD = `sk-proj-good${"a".repeat(40)}`;
const BROKE = `sk-proj-broke${"b".repeat(40)}`;
const LIMITED = `sk-proj-limited${"c".repeat(40)}`;
const BAD = `sk-proj-bad${"d".repeat(36)}WXYZ`;
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
  mock = await startMockProvider({ keys: { [GOOD]: "valid", [BROKE]: "no_credits", [LIMITED]: "rate_limited" } });
});
beforeEach(() => mock.clearRequests());
afterAll(() => mock.close());

describe("OpenAI routes", () => {
  const chat = (extra: Record<string, unknown> = {}, key = GOOD) =>
    call("/v1/chat/completions", { key, body: { model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPT }], ...extra } });

  it("lists models with OpenAI's headers", async () => {
    const reply = await call("/v1/models", { key: GOOD });
    expect(reply.status).toBe(200);
    expect(reply.body.object).toBe("list");
    expect(reply.body.data.map((model: { id: string }) => model.id)).toContain("gpt-4o-mini");
    expect(reply.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    expect(reply.headers.get("x-ratelimit-remaining-requests")).toBe("4999");
    expect(reply.headers.get("x-ratelimit-reset-tokens")).toBe("9ms");
  });

  it("retrieves one model and answers 404 for an unknown one", async () => {
    expect((await call("/v1/models/gpt-4o", { key: GOOD })).body).toMatchObject({ id: "gpt-4o", object: "model" });
    const missing = await call("/v1/models/gpt-nope", { key: GOOD });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("model_not_found");
  });

  it("answers a chat completion with deterministic content and usage", async () => {
    const reply = await chat();
    expect(reply.status).toBe(200);
    expect(reply.body.object).toBe("chat.completion");
    expect(reply.body.choices[0].message).toMatchObject({ role: "assistant", content: `Mock reply: ${PROMPT}` });
    expect(reply.body.choices[0].finish_reason).toBe("stop");
    expect(reply.body.usage).toMatchObject({
      prompt_tokens: Math.ceil(PROMPT.length / 4),
      completion_tokens: 6,
      total_tokens: Math.ceil(PROMPT.length / 4) + 6,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect((await chat()).body.choices).toEqual(reply.body.choices);
  });

  it("respects max_tokens, prefers max_completion_tokens, and multiplies by n", async () => {
    const limited = await chat({ max_tokens: 3 });
    expect(limited.body.choices[0]).toMatchObject({ finish_reason: "length", message: { content: "Mock reply: hello" } });
    expect(limited.body.usage.completion_tokens).toBe(3);
    expect((await chat({ max_tokens: 3, max_completion_tokens: 2 })).body.usage.completion_tokens).toBe(2);
    const two = await chat({ n: 2 });
    expect(two.body.choices).toHaveLength(2);
    expect(two.body.usage.completion_tokens).toBe(12);
  });

  it('reports cached prompt tokens only when the body has "cache": true', async () => {
    const prompt = "x".repeat(400);
    const body = { model: "m", messages: [{ role: "user", content: prompt }], cache: true };
    const reply = await call("/v1/chat/completions", { key: GOOD, body });
    expect(reply.body.usage.prompt_tokens).toBe(100);
    expect(reply.body.usage.prompt_tokens_details.cached_tokens).toBe(50);
  });

  it("streams chunks with usage null and no usage chunk unless include_usage is set", async () => {
    const reply = await chat({ stream: true });
    expect(reply.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(reply.body);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    expect(chunks.every((chunk) => chunk.usage === null && chunk.choices.length === 1)).toBe(true);
    const text = chunks.map((chunk) => chunk.choices[0].delta.content ?? "").join("");
    expect(text).toBe(`Mock reply: ${PROMPT}`);
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
  });

  it("streams a final usage chunk with empty choices when include_usage is true", async () => {
    const plain = await chat();
    const events = parseSse((await chat({ stream: true, stream_options: { include_usage: true } })).body);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const last = JSON.parse(events.at(-2)?.data ?? "{}");
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(plain.body.usage);
    const others = events.slice(0, -2).map((event) => JSON.parse(event.data));
    expect(others.every((chunk) => chunk.usage === null)).toBe(true);
  });

  it("returns deterministic embeddings as floats or base64", async () => {
    const body = { model: "text-embedding-3-small", input: ["alpha", "beta"] };
    const floats = await call("/v1/embeddings", { key: GOOD, body });
    expect(floats.status).toBe(200);
    expect(floats.body.data).toHaveLength(2);
    expect(floats.body.data[0].embedding).toHaveLength(16);
    expect(floats.body.data[0].embedding).not.toEqual(floats.body.data[1].embedding);
    expect(floats.body.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    expect((await call("/v1/embeddings", { key: GOOD, body })).body.data).toEqual(floats.body.data);
    const sized = await call("/v1/embeddings", { key: GOOD, body: { ...body, dimensions: 4 } });
    expect(sized.body.data[0].embedding).toHaveLength(4);
    const encoded = await call("/v1/embeddings", { key: GOOD, body: { ...body, encoding_format: "base64" } });
    const decoded = new Float32Array(Uint8Array.from(Buffer.from(encoded.body.data[0].embedding, "base64")).buffer);
    expect(Array.from(decoded)).toEqual(Array.from(new Float32Array(floats.body.data[0].embedding)));
  });

  it("answers the Responses API, plain and streamed", async () => {
    const plain = await call("/v1/responses", { key: GOOD, body: { model: "gpt-4o-mini", input: PROMPT } });
    expect(plain.body).toMatchObject({ object: "response", status: "completed", output_text: `Mock reply: ${PROMPT}` });
    expect(plain.body.usage).toMatchObject({ input_tokens: 6, output_tokens: 6, total_tokens: 12 });
    const streamed = await call("/v1/responses", { key: GOOD, body: { model: "gpt-4o-mini", input: PROMPT, stream: true } });
    const events = parseSse(streamed.body);
    expect(events[0]?.event).toBe("response.created");
    expect(events.at(-1)?.event).toBe("response.completed");
    expect(JSON.parse(events.at(-1)?.data ?? "{}").response.usage).toEqual(plain.body.usage);
  });

  it("answers an unknown key with OpenAI's 401, quoting a masked fragment", async () => {
    const reply = await call("/v1/models", { key: BAD });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({
      error: {
        message: `Incorrect API key provided: sk-proj-${"*".repeat(BAD.length - 12)}WXYZ. You can find your API key at https://platform.openai.com/account/api-keys.`,
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    });
  });

  it("answers a request without a key with 401", async () => {
    const reply = await call("/v1/chat/completions", { body: { model: "m", messages: [] } });
    expect(reply.status).toBe(401);
    expect(reply.body.error.message).toMatch(/didn't provide an API key/);
  });

  it("lets an account without credit list models but not run inference", async () => {
    expect((await call("/v1/models", { key: BROKE })).status).toBe(200);
    for (const path of ["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]) {
      const reply = await call(path, { key: BROKE, body: { model: "m", messages: [], input: "x" } });
      expect(reply.status, path).toBe(429);
      expect(reply.body.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    }
  });

  it("rate-limits a rate_limited key with retry-after and exhausted headers", async () => {
    const reply = await chat({}, LIMITED);
    expect(reply.status).toBe(429);
    expect(reply.body.error.code).toBe("rate_limit_exceeded");
    expect(reply.headers.get("retry-after")).toBe("1");
    expect(reply.headers.get("x-ratelimit-remaining-requests")).toBe("0");
  });

  it("refuses malformed JSON, missing parameters and unknown routes", async () => {
    expect((await call("/v1/chat/completions", { key: GOOD, raw: "{not json" })).status).toBe(400);
    const missing = await call("/v1/chat/completions", { key: GOOD, body: { model: "m" } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.param).toBe("messages");
    const unknown = await call("/v1/nothing", { key: GOOD, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toBe("Invalid URL (POST /v1/nothing)");
  });
});

describe("recording and options", () => {
  it("records method, path, query, auth header and parsed body, but not control calls", async () => {
    await call("/v1/chat/completions?trace=1", { key: GOOD, body: { model: "m", messages: [{ role: "user", content: "hi" }] } });
    await fetch(`${mock.url}/__mock/requests`);
    const [recorded, ...rest] = mock.requests();
    expect(rest).toEqual([]);
    expect(recorded).toMatchObject({
      method: "POST",
      path: "/v1/chat/completions",
      search: "?trace=1",
      body: { model: "m", messages: [{ role: "user", content: "hi" }] },
    });
    expect(recorded?.headers.authorization).toBe(`Bearer ${GOOD}`);
  });

  it("keeps only the latest requests up to recordLimit", async () => {
    const small = await startMockProvider({ recordLimit: 2, acceptUnknownKeys: true });
    try {
      for (const path of ["/v1/models/a", "/v1/models/b", "/v1/models/c"]) {
        await fetch(`${small.url}${path}`, { headers: { authorization: "Bearer sk-any" } });
      }
      expect(small.requests().map((request) => request.path)).toEqual(["/v1/models/b", "/v1/models/c"]);
    } finally {
      await small.close();
    }
  });

  it("accepts unknown keys when asked to", async () => {
    const open = await startMockProvider({ acceptUnknownKeys: true });
    try {
      const reply = await fetch(`${open.openaiBaseUrl}/models`, { headers: { authorization: "Bearer sk-whatever" } });
      expect(reply.status).toBe(200);
      await reply.body?.cancel();
    } finally {
      await open.close();
    }
  });

  it("holds answers for latencyMs and still closes promptly with a request waiting", async () => {
    const slow = await startMockProvider({ latencyMs: 60_000, acceptUnknownKeys: true });
    const pending = fetch(`${slow.openaiBaseUrl}/models`, { headers: { authorization: "Bearer sk-any" } });
    while (slow.requests().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await slow.close();
    await expect(pending).rejects.toThrow();
  });
});
