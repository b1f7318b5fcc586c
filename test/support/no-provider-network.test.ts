import { describe, expect, it } from "vitest";

describe("the test setup", () => {
  it("refuses a connection to a real provider from any test", async () => {
    for (const url of ["https://api.openai.com/v1/models", "https://API.anthropic.com/v1/models"]) {
      const failure: unknown = await fetch(url).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(String((failure as Error | undefined)?.cause)).toContain("tests use keyport mock-provider");
    }
  });
});
