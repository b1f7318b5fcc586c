import { describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../lib/domain.js";
import { createGatewayAdapters } from "./gateway-registry.js";

describe("createGatewayAdapters", () => {
  const adapters = createGatewayAdapters({
    openai: { baseUrl: "http://127.0.0.1:4010/v1/" },
    anthropic: { baseUrl: "http://127.0.0.1:4020" },
  });

  it("has one frozen adapter per provider, each under its own id", () => {
    expect(Object.keys(adapters).sort()).toEqual([...PROVIDER_IDS].sort());
    for (const id of PROVIDER_IDS) expect(adapters[id].id).toBe(id);
    expect(Object.isFrozen(adapters)).toBe(true);
  });

  it("binds each adapter to its own configured base URL", () => {
    expect(adapters.openai.upstreamUrl("models", "")).toBe("http://127.0.0.1:4010/v1/models");
    expect(adapters.anthropic.upstreamUrl("models", "")).toBe("http://127.0.0.1:4020/v1/models");
  });

  it("fails at start-up on a base URL that is not absolute http(s)", () => {
    expect(() =>
      createGatewayAdapters({ openai: { baseUrl: "/v1" }, anthropic: { baseUrl: "http://127.0.0.1:4020" } }),
    ).toThrow(/base URL/);
  });
});
