import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Env } from "./config-schema.js";
import { ConfigError, loadConfig } from "./load-config.js";

const base: Env = { ENCRYPTION_KEY: "ab".repeat(32), KEYPORT_JWT_SECRET: "s".repeat(32) };

function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("portal configuration", () => {
  it("defaults: no public URL, no framing, 5-minute links, 1-hour sessions, a plain cookie outside production", () => {
    const { portal, upgrade } = loadConfig(base);
    expect(portal).toEqual({ publicUrl: undefined, frameAncestors: [], linkTtlSeconds: 300, sessionTtlSeconds: 3600, secureCookie: false });
    expect(upgrade).toEqual({ hint: undefined, url: undefined });
  });

  it("reads origins, lifetimes and the upgrade text, and makes the cookie Secure when it must be", () => {
    const config = loadConfig({
      ...base,
      KEYPORT_PUBLIC_URL: "https://Keyport.Example.com/",
      KEYPORT_FRAME_ANCESTORS: "https://app.example.com, https://*.example.org  http://localhost:3000",
      KEYPORT_PORTAL_LINK_TTL_SECONDS: "60",
      KEYPORT_PORTAL_SESSION_TTL_SECONDS: "7200",
      KEYPORT_UPGRADE_HINT: "Upgrade to Premium to use your own keys.",
      KEYPORT_UPGRADE_URL: "https://app.example.com/pricing",
    });
    expect(config.portal).toEqual({
      publicUrl: "https://keyport.example.com",
      frameAncestors: ["https://app.example.com", "https://*.example.org", "http://localhost:3000"],
      linkTtlSeconds: 60,
      sessionTtlSeconds: 7200,
      secureCookie: true,
    });
    expect(config.upgrade).toEqual({ hint: "Upgrade to Premium to use your own keys.", url: "https://app.example.com/pricing" });
    expect(loadConfig({ ...base, NODE_ENV: "production", ENCRYPTION_KEY: randomBytes(32).toString("hex") }).portal.secureCookie).toBe(true);
    expect(loadConfig({ ...base, KEYPORT_FRAME_ANCESTORS: "http://localhost:3000" }).portal.secureCookie).toBe(true);
  });

  it.each([
    ["a public URL with a path", { KEYPORT_PUBLIC_URL: "https://example.com/keyport" }, /KEYPORT_PUBLIC_URL must be an origin/],
    ["a public URL that is not a URL", { KEYPORT_PUBLIC_URL: "keyport.example.com" }, /KEYPORT_PUBLIC_URL must be an origin/],
    ["an http public URL in production", { NODE_ENV: "production", KEYPORT_PUBLIC_URL: "http://keyport.example.com" }, /must be https in production/],
    ["a frame ancestor that smuggles a CSP directive", { KEYPORT_FRAME_ANCESTORS: "https://a.example;script-src" }, /is not an origin/],
    ["a frame ancestor with a quote", { KEYPORT_FRAME_ANCESTORS: "'self'" }, /is not an origin/],
    ["a wildcard frame ancestor", { KEYPORT_FRAME_ANCESTORS: "*" }, /is not an origin/],
    ["an http frame ancestor in production", { NODE_ENV: "production", KEYPORT_FRAME_ANCESTORS: "http://app.example.com" }, /must be https in production/],
    ["a link lifetime of 10 s", { KEYPORT_PORTAL_LINK_TTL_SECONDS: "10" }, /KEYPORT_PORTAL_LINK_TTL_SECONDS/],
    ["a session lifetime of two days", { KEYPORT_PORTAL_SESSION_TTL_SECONDS: "172800" }, /KEYPORT_PORTAL_SESSION_TTL_SECONDS/],
    ["a two-line upgrade hint", { KEYPORT_UPGRADE_HINT: "Upgrade\nnow" }, /KEYPORT_UPGRADE_HINT must be one line/],
    ["a javascript: upgrade URL", { KEYPORT_UPGRADE_URL: "javascript:alert(1)" }, /KEYPORT_UPGRADE_URL must be an http\(s\) URL/],
  ])("refuses %s", (_name, env, message) => {
    expect(problemsOf(env as Env).join("\n")).toMatch(message);
  });
});
