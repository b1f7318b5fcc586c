import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { Agent } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openAiKey, randomToken } from "../../../test/support/keys.js";
import type { KeyCheckResult } from "../../lib/domain.js";
import { redacted } from "../../lib/redacted.js";
import { startMockProvider } from "../../mock-provider/mock-provider.js";
import type { MockFault, MockKeyBehaviour, MockProvider } from "../../mock-provider/types.js";
import { createUpstreamClient } from "../upstream-client.js";
import { OPENAI_CREDIT_PROBE_BODY, checkOpenAiKeyFormat, createOpenAiAdapter } from "./openai-adapter.js";

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), "utf8")) as unknown;
}

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

describe("checkOpenAiKeyFormat", () => {
  it.each([
    ["project key", `sk-proj-${randomToken(48)}`],
    ["project key with underscores and dashes", `sk-proj-${randomToken(20)}_${randomToken(20)}-${randomToken(20)}`],
    ["legacy key", `sk-${randomToken(48)}`],
    ["service account key", `sk-svcacct-${randomToken(60)}`],
  ])("accepts a %s", (_name, key) => {
    expect(checkOpenAiKeyFormat(key)).toBeUndefined();
  });

  it.each([
    ["inner space", `sk-proj-${randomToken(20)} ${randomToken(20)}`, "whitespace"],
    ["inner tab", `sk-proj-${randomToken(20)}\t${randomToken(20)}`, "whitespace"],
    ["inner newline", `sk-proj-${randomToken(20)}\n${randomToken(20)}`, "whitespace"],
    ["NBSP", `sk-proj-${randomToken(20)}\u00A0${randomToken(20)}`, "whitespace"],
    ["zero-width space", `sk-proj-${randomToken(20)}\u200B${randomToken(20)}`, "whitespace"],
    ["non-ASCII character", `sk-proj-${randomToken(20)}ü${randomToken(20)}`, "characters"],
    ["1000 characters", `sk-proj-${randomToken(992)}`, "length"],
    ["5 characters", "sk-ab", "length"],
    ["Anthropic key", `sk-ant-api03-${randomToken(93)}AA`, "other_provider"],
    ["admin key", `sk-admin-${randomToken(48)}`, "admin_key"],
    ["unknown prefix", `pk-${randomToken(48)}`, "wrong_prefix"],
    ["no prefix", randomToken(48), "wrong_prefix"],
  ])("refuses a key with %s", (_name, key, code) => {
    const problem = checkOpenAiKeyFormat(key);
    expect(problem?.code).toBe(code);
    const tail = key.slice(-10);
    if (tail.length === 10) expect(problem?.message).not.toContain(tail);
  });

  it("names the expected prefix and the other provider", () => {
    expect(checkOpenAiKeyFormat(`pk-${randomToken(48)}`)?.message).toContain("sk-");
    expect(checkOpenAiKeyFormat(`sk-ant-api03-${randomToken(93)}AA`)?.message).toMatch(/looks like an Anthropic key/);
  });
});

describe("OpenAI checkKey against the mock provider", () => {
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

  const adapter = (keyCheckTimeoutMs = 2000, baseUrl: string = mock.openaiBaseUrl) =>
    createOpenAiAdapter({ baseUrl, keyCheckTimeoutMs, upstream: createUpstreamClient({ dispatcher, baseUrl }) });

  const cases: Array<{ name: string; behaviour?: MockKeyBehaviour; fault?: MockFault; expected: KeyCheckResult }> = [
    { name: "valid key", behaviour: "valid", expected: "valid" },
    { name: "invalid key", behaviour: "invalid", expected: "invalid" },
    { name: "unknown key", expected: "invalid" },
    { name: "account without credit", behaviour: "no_credits", expected: "no_credits" },
    { name: "rate-limited key", behaviour: "rate_limited", expected: "rate_limited" },
    { name: "models 500", behaviour: "valid", fault: { kind: "status", status: 500 }, expected: "unreachable" },
    { name: "models 503", behaviour: "valid", fault: { kind: "status", status: 503 }, expected: "unreachable" },
    // A 403 leaves the key usable (docs/decisions.md): the probe decides, and it succeeds.
    { name: "models 403", behaviour: "valid", fault: { kind: "status", status: 403 }, expected: "valid" },
    {
      name: "models and probe 403 account_deactivated",
      behaviour: "valid",
      fault: { kind: "status", status: 403, body: { error: { message: "This account is deactivated.", type: "invalid_request_error", param: null, code: "account_deactivated" } } },
      expected: "invalid",
    },
    {
      name: "models 429 insufficient_quota",
      behaviour: "valid",
      fault: { kind: "status", status: 429, body: fixture("insufficient-quota.429.json") },
      expected: "no_credits",
    },
    {
      name: "credit probe 500",
      behaviour: "valid",
      fault: { kind: "status", status: 500, match: { path: "/v1/chat/completions" } },
      expected: "valid",
    },
    {
      name: "restricted key that may not list models",
      behaviour: "valid",
      fault: { kind: "status", status: 401, body: fixture("missing-scope.401.json"), match: { path: "/v1/models" } },
      expected: "valid",
    },
    {
      name: "restricted key without any scope: accepted, with what it may not do",
      behaviour: "valid",
      fault: { kind: "status", status: 401, body: fixture("missing-scope.401.json"), times: 2 },
      expected: "valid",
    },
    { name: "connection reset", behaviour: "valid", fault: { kind: "reset" }, expected: "unreachable" },
  ];

  it.each(cases)("$name → $expected", async ({ behaviour, fault, expected }) => {
    const key = openAiKey();
    if (behaviour !== undefined) mock.setKey(key, behaviour);
    if (fault !== undefined) mock.injectFault(fault);
    const check = await adapter().checkKey(redacted(key));
    expect(check.result, check.message).toBe(expected);
    expect(check.message.length).toBeGreaterThan(0);
    expect(check.message).not.toContain(key);
    expect(check.message).not.toContain(mock.url);
  });

  it("sends the key as a bearer token to /v1/models, then probes credit with a one-token completion", async () => {
    const key = openAiKey();
    mock.setKey(key, "no_credits");
    await adapter().checkKey(redacted(key));
    const seen = mock.requests().map((request) => ({
      method: request.method,
      path: request.path,
      authorization: request.headers.authorization,
      body: request.body,
    }));
    expect(seen).toEqual([
      { method: "GET", path: "/v1/models", authorization: `Bearer ${key}`, body: undefined },
      { method: "POST", path: "/v1/chat/completions", authorization: `Bearer ${key}`, body: OPENAI_CREDIT_PROBE_BODY },
    ]);
  });

  it("does not probe credit when the key is rejected", async () => {
    const key = openAiKey();
    await adapter().checkKey(redacted(key));
    expect(mock.requests().map((request) => request.path)).toEqual(["/v1/models"]);
  });

  it("returns no fragment of the key from OpenAI's 401 message", async () => {
    const key = `sk-proj-${randomToken(40)}Q7xZ`;
    const check = await adapter().checkKey(redacted(key));
    expect(check.result).toBe("invalid");
    expect(check.message).toContain("Incorrect API key provided");
    for (let start = 0; start + 6 <= key.length; start += 1) {
      expect(check.message).not.toContain(key.slice(start, start + 6));
    }
    expect(check.message).not.toContain(key.slice(0, 8));
    expect(check.message).not.toContain("Q7xZ");
  });

  it("gives up at its timeout when the provider does not answer", { timeout: 5000 }, async () => {
    const key = openAiKey();
    mock.setKey(key, "valid");
    mock.injectFault({ kind: "delay", ms: 60_000 });
    const check = await adapter(150).checkKey(redacted(key));
    expect(check).toEqual({ result: "unreachable", message: "OpenAI did not answer within 150 ms. Try again later." });
  });

  it("reports a refused connection as unreachable", async () => {
    const check = await adapter(2000, await closedPortUrl()).checkKey(redacted(openAiKey()));
    expect(check).toEqual({ result: "unreachable", message: "Could not connect to OpenAI. Try again later." });
  });

  it("stops when the caller aborts", { timeout: 5000 }, async () => {
    const key = openAiKey();
    mock.injectFault({ kind: "delay", ms: 60_000 });
    const controller = new AbortController();
    const pending = adapter(30_000).checkKey(redacted(key), { signal: controller.signal });
    controller.abort();
    expect((await pending).result).toBe("unreachable");
  });

  it("keeps its never-throw promise even with a nonsensical timeout", async () => {
    const check = await adapter(-1).checkKey(redacted(openAiKey()));
    expect(check.result).toBe("unreachable");
  });

  it("refuses a key that cannot travel in a header without sending it", async () => {
    const key = `sk-proj-${randomToken(20)}\r\nx-injected: 1`;
    const check = await adapter().checkKey(redacted(key));
    expect(check.result).toBe("invalid");
    expect(check.message).not.toContain(key.slice(8, 20));
    expect(mock.requests()).toEqual([]);
  });
});
