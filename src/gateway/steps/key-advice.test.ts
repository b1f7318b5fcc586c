import { describe, expect, it } from "vitest";
import { nextStepAdvice } from "./key-advice.js";

describe("the next step a refused platform call suggests", () => {
  it("sends an owner whose plan uses their own keys to Settings", () => {
    for (const reason of ["no_own_key", "own_key_unusable", "own_key_failed"] as const) {
      expect(nextStepAdvice(reason, { hint: "Upgrade to Premium.", url: "https://app.example.com/plans" })).toBe("add your own API key in Settings.");
    }
  });

  it("gives an owner whose plan does not use their own keys the operator's upgrade hint and link instead", () => {
    expect(nextStepAdvice("byok_not_allowed", { hint: "Upgrade to Premium to use your own keys.", url: "https://app.example.com/plans" })).toBe(
      "Upgrade to Premium to use your own keys. https://app.example.com/plans",
    );
    expect(nextStepAdvice("byok_not_allowed", { hint: undefined, url: undefined })).toBe("Your plan does not use your own API keys.");
    expect(nextStepAdvice("byok_not_allowed", { hint: undefined, url: "https://app.example.com/plans" })).toBe(
      "Your plan does not use your own API keys. https://app.example.com/plans",
    );
  });
});
