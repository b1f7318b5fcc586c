import { Agent } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../lib/domain.js";
import { createProviderRegistry } from "./registry.js";

describe("createProviderRegistry", () => {
  const dispatcher = new Agent();
  afterAll(() => dispatcher.close());

  const registry = createProviderRegistry({
    openai: { baseUrl: "https://api.openai.com/v1", timeoutMs: 1000, dispatcher },
    anthropic: { baseUrl: "https://api.anthropic.com", timeoutMs: 1000, dispatcher },
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
});
