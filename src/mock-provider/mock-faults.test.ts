import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startMockProvider } from "./mock-provider.js";
import type { MockFault, MockProvider } from "./types.js";

const KEY = `sk-proj-fault${"a".repeat(40)}`;
const OTHER = `sk-proj-other${"b".repeat(40)}`;
const ANTHROPIC_KEY = `sk-ant-api03-${"c".repeat(93)}AA`;
const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "one two three" }] };

let mock: MockProvider;

beforeAll(async () => {
  mock = await startMockProvider({ keys: { [KEY]: "valid", [OTHER]: "valid", [ANTHROPIC_KEY]: "valid" } });
});
afterEach(() => {
  mock.clearFaults();
  mock.clearRequests();
});
afterAll(() => mock.close());

function openAi(path: string, body?: unknown, key = KEY): Promise<Response> {
  return fetch(`${mock.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

function anthropicMessages(body: unknown): Promise<Response> {
  return fetch(`${mock.url}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const answered = await response;
  await answered.arrayBuffer();
  return answered.status;
}

/** Reads a body to its end or until the connection drops. */
async function readUntilCut(response: Response): Promise<{ text: string; error: unknown }> {
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let text = "";
  if (reader === undefined) return { text, error: undefined };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

const countEvents = (text: string) => text.split("\n\n").filter((block) => block.trim() !== "").length;

describe("status faults", () => {
  it("fire once by default, then the provider answers normally", async () => {
    mock.injectFault({ kind: "status", status: 500 });
    const failed = await openAi("/v1/models");
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: { type: "server_error" } });
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("fire `times` times", async () => {
    mock.injectFault({ kind: "status", status: 503, times: 2 });
    expect(await statusOf(openAi("/v1/models"))).toBe(503);
    expect(await statusOf(openAi("/v1/models"))).toBe(503);
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("apply only to the matching path and key, and are not used up by others", async () => {
    mock.injectFault({ kind: "status", status: 500, match: { path: "/v1/chat/completions", key: OTHER } });
    expect(await statusOf(openAi("/v1/models", undefined, OTHER))).toBe(200);
    expect(await statusOf(openAi("/v1/chat/completions", CHAT, KEY))).toBe(200);
    expect(await statusOf(openAi("/v1/chat/completions", CHAT, OTHER))).toBe(500);
    expect(await statusOf(openAi("/v1/chat/completions", CHAT, OTHER))).toBe(200);
  });

  it("use the given body and headers", async () => {
    mock.injectFault({ kind: "status", status: 429, body: { custom: true }, headers: { "retry-after": "7" } });
    const reply = await openAi("/v1/models");
    expect(reply.status).toBe(429);
    expect(reply.headers.get("retry-after")).toBe("7");
    expect(await reply.json()).toEqual({ custom: true });
  });

  it("default to the provider's own error body", async () => {
    mock.injectFault({ kind: "status", status: 529 });
    const reply = await anthropicMessages({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }] });
    expect(reply.status).toBe(529);
    expect(await reply.json()).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
    mock.injectFault({ kind: "status", status: 429 });
    const limited = await openAi("/v1/models");
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limit_exceeded" } });
  });

  it("are removed by clearFaults", async () => {
    mock.injectFault({ kind: "status", status: 500, times: 5 });
    mock.clearFaults();
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });
});

describe("connection faults", () => {
  it("reset drops the connection before any response, once", async () => {
    mock.injectFault({ kind: "reset" });
    await expect(openAi("/v1/models")).rejects.toThrow();
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("delay holds the answer so a client timeout fires", { timeout: 5000 }, async () => {
    mock.injectFault({ kind: "delay", ms: 60_000 });
    const request = fetch(`${mock.openaiBaseUrl}/models`, {
      headers: { authorization: `Bearer ${KEY}` },
      signal: AbortSignal.timeout(100),
    });
    await expect(request).rejects.toThrow();
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("delay then answers normally", async () => {
    mock.injectFault({ kind: "delay", ms: 20 });
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("reset-mid-stream cuts an OpenAI stream after the given number of events", async () => {
    mock.injectFault({ kind: "reset-mid-stream", afterEvents: 3 });
    const response = await openAi("/v1/chat/completions", { ...CHAT, stream: true });
    expect(response.status).toBe(200);
    const { text, error } = await readUntilCut(response);
    expect(error).toBeDefined();
    expect(countEvents(text)).toBe(3);
    expect(text).not.toContain("[DONE]");
    const whole = await readUntilCut(await openAi("/v1/chat/completions", { ...CHAT, stream: true }));
    expect(whole.error).toBeUndefined();
    expect(whole.text).toContain("data: [DONE]");
  });

  it("reset-mid-stream cuts an Anthropic stream too", async () => {
    mock.injectFault({ kind: "reset-mid-stream", afterEvents: 2 });
    const response = await anthropicMessages({ model: "m", max_tokens: 50, stream: true, messages: [{ role: "user", content: "a b c" }] });
    const { text, error } = await readUntilCut(response);
    expect(error).toBeDefined();
    expect(countEvents(text)).toBe(2);
    expect(text).not.toContain("message_stop");
  });

  it("reset-mid-stream is neither triggered nor used up by a request that does not stream", async () => {
    mock.injectFault({ kind: "reset-mid-stream", afterEvents: 0 });
    expect(await statusOf(openAi("/v1/chat/completions", CHAT))).toBe(200);
    const { text, error } = await readUntilCut(await openAi("/v1/chat/completions", { ...CHAT, stream: true }));
    expect(error).toBeDefined();
    expect(text).toBe("");
  });

  it("refuses an invalid fault", () => {
    expect(() => mock.injectFault({ kind: "status", status: 42 })).toThrow(/status must be/);
    expect(() => mock.injectFault({ kind: "delay", ms: -1 })).toThrow(/ms must be/);
    expect(() => mock.injectFault({ kind: "reset", times: 0 })).toThrow(/times must be/);
    expect(() => mock.injectFault({ kind: "explode" } as unknown as MockFault)).toThrow(/kind must be/);
  });
});

describe("alter faults", () => {
  it("add response headers to an answer that is otherwise as usual", async () => {
    mock.injectFault({ kind: "alter", headers: { "x-extra": "1" } });
    const response = await openAi("/v1/chat/completions", CHAT);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-extra")).toBe("1");
    expect(((await response.json()) as { object: string }).object).toBe("chat.completion");
  });

  it.each(["gzip", "deflate", "br"] as const)("compress a JSON answer with %s", async (contentEncoding) => {
    mock.injectFault({ kind: "alter", contentEncoding });
    // fetch decodes by content-encoding: the body reads as the usual answer.
    const response = await openAi("/v1/chat/completions", CHAT);
    expect(response.headers.get("content-encoding")).toBe(contentEncoding);
    expect(((await response.json()) as { object: string }).object).toBe("chat.completion");
  });

  it("compress a stream event by event, to the same events", async () => {
    mock.injectFault({ kind: "alter", contentEncoding: "gzip" });
    const response = await openAi("/v1/chat/completions", { ...CHAT, stream: true });
    expect(response.headers.get("content-encoding")).toBe("gzip");
    const text = await response.text();
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("refuse an unknown encoding or bad headers", () => {
    expect(() => mock.injectFault({ kind: "alter", contentEncoding: "zstd" } as unknown as MockFault)).toThrow(/contentEncoding must be/);
    expect(() => mock.injectFault({ kind: "alter", headers: { a: 1 } } as unknown as MockFault)).toThrow(/headers must be/);
  });
});

describe("control API", () => {
  const control = (method: string, path: string, body?: unknown) =>
    fetch(`${mock.url}/__mock/${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("sets key behaviours", async () => {
    const key = `sk-proj-control${"d".repeat(40)}`;
    expect(await statusOf(openAi("/v1/models", undefined, key))).toBe(401);
    expect(await statusOf(control("POST", "keys", { key, behaviour: "rate_limited" }))).toBe(204);
    expect(await statusOf(openAi("/v1/models", undefined, key))).toBe(429);
  });

  it("refuses an unknown behaviour or a missing key", async () => {
    expect(await statusOf(control("POST", "keys", { key: "k", behaviour: "sometimes" }))).toBe(400);
    expect(await statusOf(control("POST", "keys", { behaviour: "valid" }))).toBe(400);
  });

  it("injects one fault or several, and clears them", async () => {
    expect(await statusOf(control("POST", "faults", { kind: "status", status: 502 }))).toBe(204);
    expect(await statusOf(openAi("/v1/models"))).toBe(502);
    const faults = [
      { kind: "status", status: 500 },
      { kind: "status", status: 503 },
    ];
    expect(await statusOf(control("POST", "faults", faults))).toBe(204);
    expect(await statusOf(control("DELETE", "faults"))).toBe(204);
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("refuses an invalid fault without adding any of a batch", async () => {
    const reply = await control("POST", "faults", [{ kind: "status", status: 500 }, { kind: "nope" }]);
    expect(reply.status).toBe(400);
    expect(await reply.json()).toMatchObject({ error: expect.stringMatching(/kind must be/) });
    expect(await statusOf(openAi("/v1/models"))).toBe(200);
  });

  it("lists and clears recorded requests", async () => {
    await statusOf(openAi("/v1/models"));
    const listed = await control("GET", "requests");
    const recorded = (await listed.json()) as Array<{ path: string; headers: Record<string, string> }>;
    expect(recorded.map((request) => request.path)).toEqual(["/v1/models"]);
    expect(recorded[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(await statusOf(control("DELETE", "requests"))).toBe(204);
    expect(mock.requests()).toEqual([]);
  });

  it("answers 404 for an unknown control route", async () => {
    expect(await statusOf(control("GET", "nothing"))).toBe(404);
  });
});
