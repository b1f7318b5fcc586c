import { Agent } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../lib/domain.js";
import { createProviderRegistry } from "./registry.js";

describe("createProviderRegistry", () => {
  const dispatcher = new Agent();
  afterAll(() => dispatcher.close());

  const registry = createProviderRegistry({
    dispatcher,
    keyCheckTimeoutMs: 1000,
    openai: { baseUrl: "https://api.openai.com/v1" },
    anthropic: { baseUrl: "https://api.anthropic.com" },
  });

  it("has one adapter per provider, under its own id", () => {
    expect(Object.keys(registry).sort()).toEqual([...PROVIDER_IDS].sort());
    for (const id of PROVIDER_IDS) expect(registry[id].id).toBe(id);
  });

  it("routes each key shape to the adapter that accepts it", () => {
    const openAiKey = `sk-proj-${"a".repeat(48)}`;
    const anthropicKey = `sk-ant-api03-${"b".repeat(93)}AA`;
    expect(registry.openai.checkKeyFormat(openAiKey)).toBeUndefined();
    expect(registry.anthropic.checkKeyFormat(anthropicKey)).toBeUndefined();
    expect(registry.openai.checkKeyFormat(anthropicKey)?.code).toBe("other_provider");
    expect(registry.anthropic.checkKeyFormat(openAiKey)?.code).toBe("other_provider");
  });

  it("cannot be modified", () => {
    expect(Object.isFrozen(registry)).toBe(true);
  });

  it("fails at start-up on a base URL that is not absolute http(s), or that carries credentials", () => {
    for (const baseUrl of ["/v1", "api.openai.com/v1", "ftp://api.openai.com/v1", "https://user:pw@api.openai.com/v1", "https://api.openai.com/v1?x=1"]) {
      expect(() => createProviderRegistry({ dispatcher, keyCheckTimeoutMs: 1, openai: { baseUrl }, anthropic: { baseUrl: "https://api.anthropic.com" } })).toThrow(/base URL/);
    }
  });
});
