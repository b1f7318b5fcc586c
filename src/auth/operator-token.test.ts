import { describe, expect, it } from "vitest";
import { redacted } from "../lib/redacted.js";
import { createOperatorTokenCheck } from "./operator-token.js";

const ADMIN_TOKEN = "operator-token-0123456789abcdefghijklmnop";

describe("createOperatorTokenCheck", () => {
  const check = createOperatorTokenCheck(redacted(ADMIN_TOKEN));

  it("accepts the configured token", () => {
    expect(check(ADMIN_TOKEN)).toBe(true);
  });

  it.each([
    ["a different token of the same length", `${ADMIN_TOKEN.slice(0, -1)}X`],
    ["a prefix", ADMIN_TOKEN.slice(0, 32)],
    ["a longer token", `${ADMIN_TOKEN}0`],
    ["different case", ADMIN_TOKEN.toUpperCase()],
    ["surrounding whitespace", ` ${ADMIN_TOKEN}`],
    ["the redacted placeholder", "[redacted]"],
  ])("refuses %s", (_name, presented) => {
    expect(check(presented)).toBe(false);
  });

  it("refuses a missing or empty token", () => {
    expect(check(undefined)).toBe(false);
    expect(check("")).toBe(false);
  });

  it("refuses everything when no admin token is configured", () => {
    const unconfigured = createOperatorTokenCheck(undefined);
    for (const presented of [undefined, "", "undefined", ADMIN_TOKEN]) expect(unconfigured(presented)).toBe(false);
  });
});
