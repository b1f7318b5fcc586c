import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type GatewayKeyport } from "../gateway/gateway-support.js";
import { anthropicKey, openAiKey } from "../support/keys.js";

/**
 * `GET /api/v1/api-keys` says which key pays for each provider; the gateway acts on the same
 * rule. Each case sets up an owner, reads what the API says, then makes a real call and checks
 * that the gateway did exactly that (`x-keyport-key-source`, or 403 `no_key_available`).
 */
describe("which key pays: the API and the gateway agree", () => {
  let keyport: GatewayKeyport;
  let sequence = 0;

  beforeAll(async () => {
    // OpenAI has a platform key, Anthropic none.
    keyport = await startGateway({ platformKeys: { anthropic: false } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  async function owner(tier: string) {
    sequence += 1;
    return keyport.token(`routing-${sequence}`, { tier });
  }

  async function storeKey(token: string, provider: "openai" | "anthropic", behaviour: "valid" | "invalid" = "valid") {
    const apiKey = provider === "openai" ? openAiKey() : anthropicKey();
    keyport.mock.setKey(apiKey, "valid");
    const created = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider, apiKey, label: "Mine" } });
    expect(created.status, created.text).toBe(201);
    // A key the provider stops accepting after it was stored.
    if (behaviour === "invalid") {
      keyport.mock.setKey(apiKey, "invalid");
      const tested = await keyport.request("POST", `/api/v1/api-keys/${created.body.id}/test`, { token });
      expect(tested.body.key.status).toBe("invalid");
    }
    return created.body as { id: string; byokAllowed: boolean };
  }

  async function routing(token: string, provider: "openai" | "anthropic") {
    const listed = await keyport.request("GET", "/api/v1/api-keys", { token });
    expect(listed.status, listed.text).toBe(200);
    return { plan: listed.body.plan, route: listed.body.providers.find((entry: { provider: string }) => entry.provider === provider) };
  }

  async function gatewaySource(token: string, provider: "openai" | "anthropic"): Promise<string> {
    const response =
      provider === "openai"
        ? await fetch(`${keyport.url}/openai/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
          })
        : await fetch(`${keyport.url}/anthropic/v1/messages`, {
            method: "POST",
            headers: { "x-api-key": token, "content-type": "application/json", "anthropic-version": "2023-06-01" },
            body: JSON.stringify({ model: "claude-haiku-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
          });
    const text = await response.text();
    if (response.status === 403) {
      // The provider's own error shape: OpenAI's carries Keyport's code, Anthropic's its type.
      expect(text).toContain(provider === "openai" ? '"code":"no_key_available"' : '"type":"permission_error"');
      return "none";
    }
    expect(response.status, text).toBe(200);
    return response.headers.get("x-keyport-key-source") ?? "missing";
  }

  it("community with a stored key: the key is kept, marked unusable on this plan, and the platform pays", async () => {
    const token = await owner("community");
    const key = await storeKey(token, "openai");
    expect(key.byokAllowed).toBe(false);
    const { plan, route } = await routing(token, "openai");
    expect(plan).toMatchObject({ tier: "community", byokAllowed: false, platformRequestsPerMinute: 10, platformRequestsPerDay: 100 });
    expect(route).toEqual({ provider: "openai", source: "platform", reason: "byok_not_allowed", keyId: null, platformKeyAvailable: true });
    expect(await gatewaySource(token, "openai")).toBe("platform");
  });

  it("community without a platform key: nobody pays, and the call is refused", async () => {
    const token = await owner("community");
    await storeKey(token, "anthropic");
    const { route } = await routing(token, "anthropic");
    expect(route).toMatchObject({ source: "none", reason: "byok_not_allowed", platformKeyAvailable: false });
    expect(await gatewaySource(token, "anthropic")).toBe("none");
  });

  it("premium with an active valid key: the owner's key", async () => {
    const token = await owner("premium");
    const key = await storeKey(token, "anthropic");
    expect(key.byokAllowed).toBe(true);
    const { route } = await routing(token, "anthropic");
    expect(route).toMatchObject({ source: "byok", reason: null, keyId: key.id });
    expect(await gatewaySource(token, "anthropic")).toBe("byok");
  });

  it("premium whose active key is invalid: the platform key, or nobody", async () => {
    const token = await owner("premium");
    await storeKey(token, "openai", "invalid");
    await storeKey(token, "anthropic", "invalid");
    expect((await routing(token, "openai")).route).toMatchObject({ source: "platform", reason: "own_key_unusable", keyId: null });
    expect(await gatewaySource(token, "openai")).toBe("platform");
    expect((await routing(token, "anthropic")).route).toMatchObject({ source: "none", reason: "own_key_unusable" });
    expect(await gatewaySource(token, "anthropic")).toBe("none");
  });

  it("premium without keys: the platform key where there is one", async () => {
    const token = await owner("premium");
    expect((await routing(token, "openai")).route).toMatchObject({ source: "platform", reason: "no_own_key" });
    expect(await gatewaySource(token, "openai")).toBe("platform");
    expect((await routing(token, "anthropic")).route).toMatchObject({ source: "none", reason: "no_own_key" });
    expect(await gatewaySource(token, "anthropic")).toBe("none");
  });

  it("filters the keys by provider but describes every provider", async () => {
    const token = await owner("premium");
    await storeKey(token, "openai");
    const listed = await keyport.request("GET", "/api/v1/api-keys?provider=anthropic", { token });
    expect(listed.body.keys).toEqual([]);
    expect(listed.body.providers.map((entry: { provider: string; source: string }) => [entry.provider, entry.source])).toEqual([
      ["openai", "byok"],
      ["anthropic", "none"],
    ]);
  });
});
