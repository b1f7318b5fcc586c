import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockProvider } from "./mock-provider.js";
import type { MockProvider } from "./types.js";

// The official clients must parse everything the mock sends, or tests built on it prove nothing.
const OPENAI_KEY = `sk-proj-sdk${"a".repeat(40)}`;
const OPENAI_BROKE = `sk-proj-broke${"b".repeat(40)}`;
const ANTHROPIC_KEY = `sk-ant-api03-${"c".repeat(93)}AA`;

let mock: MockProvider;

beforeAll(async () => {
  mock = await startMockProvider({
    keys: { [OPENAI_KEY]: "valid", [OPENAI_BROKE]: "no_credits", [ANTHROPIC_KEY]: "valid" },
  });
});
afterAll(() => mock.close());

describe("openai SDK against the mock", () => {
  const client = () => new OpenAI({ apiKey: OPENAI_KEY, baseURL: mock.openaiBaseUrl, maxRetries: 0 });
  const messages = [{ role: "user" as const, content: "say something nice" }];

  it("lists models", async () => {
    const ids: string[] = [];
    for await (const model of client().models.list()) ids.push(model.id);
    expect(ids).toContain("gpt-4o-mini");
  });

  it("creates a completion and streams one with usage", async () => {
    const completion = await client().chat.completions.create({ model: "gpt-4o-mini", messages });
    expect(completion.choices[0]?.message.content).toBe("Mock reply: say something nice");
    const stream = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(completion.choices[0]?.message.content);
    expect(usage).toEqual(completion.usage);
  });

  it("decodes the default base64 embeddings", async () => {
    const decoded = await client().embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    const floats = await client().embeddings.create({ model: "text-embedding-3-small", input: "hello", encoding_format: "float" });
    expect(decoded.data[0]?.embedding).toHaveLength(16);
    expect(decoded.data[0]?.embedding).toEqual(Array.from(new Float32Array(floats.data[0]?.embedding ?? [])));
  });

  it("reads a Responses API answer and its stream", async () => {
    const response = await client().responses.create({ model: "gpt-4o-mini", input: "hi there" });
    expect(response.output_text).toBe("Mock reply: hi there");
    const stream = client().responses.stream({ model: "gpt-4o-mini", input: "hi there" });
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("Mock reply: hi there");
    expect(final.usage?.output_tokens).toBe(4);
  });

  it("raises the SDK's typed errors for a bad key and an empty account", async () => {
    const bad = new OpenAI({ apiKey: `sk-proj-nope${"x".repeat(40)}`, baseURL: mock.openaiBaseUrl, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const broke = new OpenAI({ apiKey: OPENAI_BROKE, baseURL: mock.openaiBaseUrl, maxRetries: 0 });
    const error = await broke.chat.completions.create({ model: "gpt-4o-mini", messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).code).toBe("insufficient_quota");
  });
});

describe("@anthropic-ai/sdk against the mock", () => {
  const client = () => new Anthropic({ apiKey: ANTHROPIC_KEY, baseURL: mock.anthropicBaseUrl, maxRetries: 0 });
  const request = { model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user" as const, content: "tell me more" }] };

  it("lists models even though it authenticates with a bearer token", async () => {
    const ids: string[] = [];
    for await (const model of client().models.list()) ids.push(model.id);
    expect(ids).toContain("claude-sonnet-4-6");
    expect(mock.requests().at(-1)?.headers["anthropic-version"]).toBeDefined();
  });

  it("creates a message and streams one to the same final message", async () => {
    const message = await client().messages.create(request);
    expect(message.content[0]).toMatchObject({ type: "text", text: "Mock reply: tell me more" });
    const final = await client().messages.stream(request).finalMessage();
    expect(final.content).toEqual(message.content);
    expect(final.usage.output_tokens).toBe(message.usage.output_tokens);
    expect(final.usage.input_tokens).toBe(message.usage.input_tokens);
    expect(final.stop_reason).toBe("end_turn");
  });

  it("counts tokens", async () => {
    const counted = await client().messages.countTokens({ model: request.model, messages: request.messages });
    expect(counted.input_tokens).toBe((await client().messages.create(request)).usage.input_tokens);
  });

  it("raises the SDK's typed errors for a bad key", async () => {
    const bad = new Anthropic({ apiKey: "sk-ant-api03-nope", baseURL: mock.anthropicBaseUrl, maxRetries: 0 });
    await expect(bad.messages.create(request)).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
  });
});
