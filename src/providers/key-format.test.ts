import { describe, expect, it } from "vitest";
import { checkCommonKeyFormat, detectKeyProvider, normalizeKey } from "./key-format.js";

const BODY = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

describe("normalizeKey", () => {
  it("trims leading and trailing ASCII whitespace only", () => {
    expect(normalizeKey(` \t\r\nsk-${BODY}\r\n \t`)).toBe(`sk-${BODY}`);
  });

  it("keeps Unicode spaces so the format check can refuse them", () => {
    expect(normalizeKey(`\u00A0sk-${BODY}\u200B`)).toBe(`\u00A0sk-${BODY}\u200B`);
  });

  it("keeps inner whitespace", () => {
    expect(normalizeKey(`sk-${BODY} more`)).toBe(`sk-${BODY} more`);
  });
});

describe("detectKeyProvider", () => {
  it.each([
    [`sk-ant-api03-${BODY}`, "anthropic"],
    [`sk-ant-admin01-${BODY}`, "anthropic"],
    [`sk-proj-${BODY}`, "openai"],
    [`sk-${BODY}`, "openai"],
    [`pk-${BODY}`, undefined],
    [BODY, undefined],
  ])("%s → %s", (key, provider) => {
    expect(detectKeyProvider(key)).toBe(provider);
  });
});

describe("checkCommonKeyFormat", () => {
  it.each([
    ["empty", "", "empty"],
    ["inner space", `sk-${BODY} x`, "whitespace"],
    ["inner tab", `sk-${BODY}\tx`, "whitespace"],
    ["inner newline", `sk-${BODY}\nx`, "whitespace"],
    ["NBSP", `sk-${BODY}\u00A0x`, "whitespace"],
    ["zero-width space", `sk-${BODY}\u200Bx`, "whitespace"],
    ["line separator", `sk-${BODY}\u2028x`, "whitespace"],
    ["byte order mark", `\uFEFFsk-${BODY}`, "whitespace"],
    ["non-ASCII letter", `sk-${BODY}é`, "characters"],
    ["NUL", `sk-${BODY}\u0000`, "characters"],
    ["quote", `"sk-${BODY}"`, "characters"],
    ["dot", `sk-${BODY}.x`, "characters"],
    ["5 characters", "sk-ab", "length"],
    ["19 characters", `sk-${"a".repeat(16)}`, "length"],
    ["257 characters", `sk-${"a".repeat(254)}`, "length"],
    ["1000 characters", `sk-${"a".repeat(997)}`, "length"],
  ])("refuses a key with %s", (_name, key, code) => {
    expect(checkCommonKeyFormat(key)?.code).toBe(code);
  });

  it.each([
    ["20 characters", `sk-${"a".repeat(17)}`],
    ["256 characters", `sk-${"a".repeat(253)}`],
    ["underscores and dashes", `sk-proj-${BODY}_-_${BODY}`],
  ])("accepts %s", (_name, key) => {
    expect(checkCommonKeyFormat(key)).toBeUndefined();
  });

  it("never quotes the key or any part of it in a message", () => {
    const secretPart = "Zq9XwV7uT5";
    const keys = [
      `sk-${secretPart}${BODY} x`,
      `sk-${secretPart}${BODY}\u200B`,
      `sk-${secretPart}${BODY}é`,
      `sk-${secretPart}`,
      `sk-${secretPart}${"b".repeat(300)}`,
    ];
    for (const key of keys) {
      const problem = checkCommonKeyFormat(key);
      expect(problem, key).toBeDefined();
      expect(problem?.message).not.toContain(secretPart);
      expect(problem?.message).not.toContain("sk-");
      expect(problem?.message).not.toMatch(/[\u00A0\u200B]/);
    }
  });
});
