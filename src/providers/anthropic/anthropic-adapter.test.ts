import { createServer } from "node:net";
import { Agent } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anthropicKey, randomToken } from "../../../test/support/keys.js";
import type { KeyCheckResult } from "../../lib/domain.js";
import { redacted } from "../../lib/redacted.js";
import { startMockProvider } from "../../mock-provider/mock-provider.js";
import type { MockFault, MockKeyBehaviour, MockProvider } from "../../mock-provider/types.js";
import { createUpstreamClient } from "../upstream-client.js";
import { ANTHROPIC_VERSION, checkAnthropicKeyFormat, createAnthropicAdapter } from "./anthropic-adapter.js";

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("checkAnthropicKeyFormat", () => {
  it.each([
    ["api03 key", `sk-ant-api03-${randomToken(93)}AA`],
    ["api03 key with dashes and underscores", `sk-ant-api03-${randomToken(40)}-${randomToken(25)}_${randomToken(26)}AA`],
  ])("accepts an %s", (_name, key) => {
    expect(checkAnthropicKeyFormat(key)).toBeUndefined();
  });

  it.each([
    ["inner space", `sk-ant-api03-${randomToken(40)} ${randomToken(40)}AA`, "whitespace"],
    ["inner tab", `sk-ant-api03-${randomToken(40)}\t${randomToken(40)}AA`, "whitespace"],
    ["inner newline", `sk-ant-api03-${randomToken(40)}\n${randomToken(40)}AA`, "whitespace"],
    ["NBSP", `sk-ant-api03-${randomToken(40)}\u00A0${randomToken(40)}AA`, "whitespace"],
    ["zero-width space", `sk-ant-api03-${randomToken(40)}\u200B${randomToken(40)}AA`, "whitespace"],
    ["non-ASCII character", `sk-ant-api03-${randomToken(40)}ß${randomToken(40)}AA`, "characters"],
    ["1000 characters", `sk-ant-api03-${randomToken(987)}`, "length"],
    ["5 characters", "sk-an", "length"],
    ["OpenAI project key", `sk-proj-${randomToken(48)}`, "other_provider"],
    ["OpenAI legacy key", `sk-${randomToken(48)}`, "other_provider"],
    ["admin key", `sk-ant-admin01-${randomToken(93)}AA`, "admin_key"],
    ["OAuth token prefix", `sk-ant-oat01-${randomToken(93)}AA`, "wrong_prefix"],
    ["no prefix", randomToken(60), "wrong_prefix"],
  ])("refuses a key with %s", (_name, key, code) => {
    const problem = checkAnthropicKeyFormat(key);
    expect(problem?.code).toBe(code);
    const tail = key.slice(-12, -2);
    if (tail.length === 10) expect(problem?.message).not.toContain(tail);
  });

  it("names the expected prefix and the other provider", () => {
    expect(checkAnthropicKeyFormat(randomToken(60))?.message).toContain("sk-ant-api");
    expect(checkAnthropicKeyFormat(`sk-proj-${randomToken(48)}`)?.message).toMatch(/looks like an OpenAI key/);
  });
});

describe("Anthropic checkKey against the mock provider", () => {
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  let mock: MockProvider;

  beforeAll(async () => {
    mock = await startMockProvider({});
  });
  afterEach(() => {
    mock.clearFaults();
    mock.clearRequests();
  });
  afterAll(async () => {
    await mock.close();
    await dispatcher.close();
  });

  const adapter = (keyCheckTimeoutMs = 2000, baseUrl: string = mock.anthropicBaseUrl) =>
    createAnthropicAdapter({ baseUrl, keyCheckTimeoutMs, upstream: createUpstreamClient({ dispatcher, baseUrl }) });

  const cases: Array<{ name: string; behaviour?: MockKeyBehaviour; fault?: MockFault; expected: KeyCheckResult }> = [
    { name: "valid key", behaviour: "valid", expected: "valid" },
    { name: "invalid key", behaviour: "invalid", expected: "invalid" },
    { name: "unknown key", expected: "invalid" },
    { name: "credit balance too low", behaviour: "no_credits", expected: "no_credits" },
    { name: "rate-limited key", behaviour: "rate_limited", expected: "rate_limited" },
    { name: "402 billing_error", behaviour: "valid", fault: { kind: "status", status: 402 }, expected: "no_credits" },
    // The key authenticated; what it may not do is the provider's answer to each call (docs/decisions.md).
    { name: "403 permission_error", behaviour: "valid", fault: { kind: "status", status: 403 }, expected: "valid" },
    { name: "400 invalid_request_error", behaviour: "valid", fault: { kind: "status", status: 400 }, expected: "unreachable" },
    { name: "500 api_error", behaviour: "valid", fault: { kind: "status", status: 500 }, expected: "unreachable" },
    { name: "529 overloaded", behaviour: "valid", fault: { kind: "status", status: 529 }, expected: "unreachable" },
    { name: "connection reset", behaviour: "valid", fault: { kind: "reset" }, expected: "unreachable" },
  ];

  it.each(cases)("$name → $expected", async ({ behaviour, fault, expected }) => {
    const key = anthropicKey();
    if (behaviour !== undefined) mock.setKey(key, behaviour);
    if (fault !== undefined) mock.injectFault(fault);
    const check = await adapter().checkKey(redacted(key));
    expect(check.result, check.message).toBe(expected);
    expect(check.message.length).toBeGreaterThan(0);
    expect(check.message).not.toContain(key);
    expect(check.message).not.toContain(mock.url);
  });

  it("says what a key answered 403 may not do, in the provider's words", async () => {
    const key = anthropicKey();
    mock.setKey(key, "valid");
    mock.injectFault({ kind: "status", status: 403 });
    const check = await adapter().checkKey(redacted(key));
    expect(check.message).toMatch(/^Anthropic accepted the key, but it is not allowed to make this request: /);
  });

  it("sends x-api-key and anthropic-version to /v1/models, and nothing else", async () => {
    const key = anthropicKey();
    mock.setKey(key, "valid");
    await adapter().checkKey(redacted(key));
    const seen = mock.requests();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: "GET", path: "/v1/models", body: undefined });
    expect(seen[0]?.headers["x-api-key"]).toBe(key);
    expect(seen[0]?.headers["anthropic-version"]).toBe(ANTHROPIC_VERSION);
    expect(seen[0]?.headers.authorization).toBeUndefined();
  });

  it("gives up at its timeout when the provider does not answer", { timeout: 5000 }, async () => {
    const key = anthropicKey();
    mock.setKey(key, "valid");
    mock.injectFault({ kind: "delay", ms: 60_000 });
    const check = await adapter(150).checkKey(redacted(key));
    expect(check).toEqual({ result: "unreachable", message: "Anthropic did not answer within 150 ms. Try again later." });
  });

  it("reports a refused connection as unreachable", async () => {
    const check = await adapter(2000, await closedPortUrl()).checkKey(redacted(anthropicKey()));
    expect(check).toEqual({ result: "unreachable", message: "Could not connect to Anthropic. Try again later." });
  });

  it("keeps its never-throw promise even with a nonsensical timeout", async () => {
    const check = await adapter(-1).checkKey(redacted(anthropicKey()));
    expect(check.result).toBe("unreachable");
  });

  it("refuses a key that cannot travel in a header without sending it", async () => {
    const key = `sk-ant-api03-${randomToken(40)}\u200B${randomToken(40)}AA`;
    const check = await adapter().checkKey(redacted(key));
    expect(check.result).toBe("invalid");
    expect(mock.requests()).toEqual([]);
  });
});
