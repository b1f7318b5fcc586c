import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ProviderId } from "../lib/domain.js";
import { NO_USAGE } from "../lib/usage.js";
import type { Usage } from "../lib/usage.js";
import type { UnitPrices } from "../store/ports.js";
import { costOf, loadPriceTable, PriceTableError } from "./pricing.js";

const directory = mkdtempSync(join(tmpdir(), "keyport-pricing-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function writePriceFile(name: string, content: unknown): string {
  const path = join(directory, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** USD per million tokens → the table's nano-USD per million tokens. */
function prices(input: number, output: number, cachedInput: number, cacheWrite: number): UnitPrices {
  return {
    inputNanoUsdPerMTok: input * 1e9,
    outputNanoUsdPerMTok: output * 1e9,
    cachedInputNanoUsdPerMTok: cachedInput * 1e9,
    cacheWriteNanoUsdPerMTok: cacheWrite * 1e9,
  };
}

function usage(counts: Partial<Usage>): Usage {
  return { ...NO_USAGE, ...counts };
}

function loadError(file: string): PriceTableError {
  try {
    loadPriceTable({ file });
  } catch (error) {
    if (error instanceof PriceTableError) return error;
    throw error;
  }
  throw new Error(`expected ${file} to be refused`);
}

describe("costOf", () => {
  const gpt4o = prices(2.5, 10, 1.25, 2.5);
  const sonnet = prices(3, 15, 0.3, 3.75);
  const halves: UnitPrices = { inputNanoUsdPerMTok: 500_000, outputNanoUsdPerMTok: 500_000, cachedInputNanoUsdPerMTok: 0, cacheWriteNanoUsdPerMTok: 0 };

  const cases: ReadonlyArray<{ name: string; usage: Partial<Usage>; prices: UnitPrices | null; expected: number | null }> = [
    { name: "input and output", usage: { inputTokens: 1_000, outputTokens: 200 }, prices: gpt4o, expected: 4_500_000 },
    // 600 uncached × 2.5 + 400 cached × 1.25 + 200 × 10, per million tokens = 0.004 USD.
    { name: "OpenAI cached input", usage: { inputTokens: 1_000, cachedInputTokens: 400, outputTokens: 200 }, prices: gpt4o, expected: 4_000_000 },
    // 2,000 uncached × 3 + 6,000 read × 0.3 + 2,000 written × 3.75 + 500 × 15 = 0.0228 USD.
    {
      name: "Anthropic cache reads and writes",
      usage: { inputTokens: 10_000, cachedInputTokens: 6_000, cacheWriteTokens: 2_000, outputTokens: 500 },
      prices: sonnet,
      expected: 22_800_000,
    },
    { name: "more cached than input never goes negative", usage: { inputTokens: 10, cachedInputTokens: 40 }, prices: gpt4o, expected: 50_000 },
    { name: "only output reported", usage: { outputTokens: 3 }, prices: gpt4o, expected: 30_000 },
    { name: "zero tokens is a known zero", usage: { inputTokens: 0, outputTokens: 0 }, prices: gpt4o, expected: 0 },
    { name: "no token counts at all", usage: {}, prices: gpt4o, expected: null },
    { name: "no prices", usage: { inputTokens: 1_000, outputTokens: 10 }, prices: null, expected: null },
    { name: "rounds once at the end (0.5 + 0.5 = 1, not 2)", usage: { inputTokens: 1, outputTokens: 1 }, prices: halves, expected: 1 },
    { name: "rounds half up", usage: { inputTokens: 3 }, prices: halves, expected: 2 },
    { name: "rounds down below one half", usage: { inputTokens: 1 }, prices: { ...halves, inputNanoUsdPerMTok: 400_000 }, expected: 0 },
    // 2^53 − 1 tokens at 1 nano-USD per million: floats would lose the last digits.
    {
      name: "exact with huge counts",
      usage: { inputTokens: Number.MAX_SAFE_INTEGER },
      prices: { ...halves, inputNanoUsdPerMTok: 1 },
      expected: 9_007_199_255,
    },
    { name: "a negative count counts as not reported", usage: { inputTokens: -5, outputTokens: 1 }, prices: gpt4o, expected: 10_000 },
    { name: "a fractional count alone is unknown", usage: { inputTokens: 1.5 }, prices: gpt4o, expected: null },
    { name: "a price that is not an integer is no price", usage: { inputTokens: 1 }, prices: { ...gpt4o, outputNanoUsdPerMTok: 0.5 }, expected: null },
  ];

  it.each(cases)("$name", ({ usage: counts, prices: unitPrices, expected }) => {
    expect(costOf(usage(counts), unitPrices)).toBe(expected);
  });
});

describe("the shipped price table", () => {
  const table = loadPriceTable();

  it("has a version", () => {
    expect(table.version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  const required: ReadonlyArray<readonly [ProviderId, string]> = [
    ...["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"].map(
      (model) => ["openai", model] as const,
    ),
    ["openai", "text-embedding-3-small"],
    ["openai", "text-embedding-3-large"],
    ...["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest", "claude-3-5-sonnet-latest"].map(
      (model) => ["anthropic", model] as const,
    ),
  ];

  it.each(required)("prices %s %s", (provider, model) => {
    expect(table.pricesFor(provider, model)).not.toBeNull();
  });

  it("converts USD per million tokens to integer nano-USD", () => {
    expect(table.pricesFor("openai", "gpt-4o")).toEqual(prices(2.5, 10, 1.25, 2.5));
    expect(table.pricesFor("openai", "gpt-4o-mini")).toEqual({
      inputNanoUsdPerMTok: 150_000_000,
      outputNanoUsdPerMTok: 600_000_000,
      cachedInputNanoUsdPerMTok: 75_000_000,
      cacheWriteNanoUsdPerMTok: 150_000_000,
    });
    expect(table.pricesFor("openai", "text-embedding-3-small")?.outputNanoUsdPerMTok).toBe(0);
    expect(table.pricesFor("openai", "text-embedding-3-large")?.outputNanoUsdPerMTok).toBe(0);
  });

  it("prices Anthropic cache writes at 1.25 × input and cache reads at 0.1 × input", () => {
    for (const model of ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest", "claude-3-5-sonnet-latest"]) {
      const unitPrices = table.pricesFor("anthropic", model);
      expect(unitPrices?.cacheWriteNanoUsdPerMTok).toBe(((unitPrices?.inputNanoUsdPerMTok ?? 0) * 5) / 4);
      expect(unitPrices?.cachedInputNanoUsdPerMTok).toBe((unitPrices?.inputNanoUsdPerMTok ?? 0) / 10);
    }
  });

  const snapshots: ReadonlyArray<readonly [ProviderId, string, string]> = [
    ["openai", "gpt-4o-2024-08-06", "gpt-4o"],
    ["openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"],
    ["openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"],
    ["openai", "o3-mini-2025-01-31", "o3-mini"],
    ["openai", "gpt-5-2025-08-07", "gpt-5"],
    ["anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
    ["anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"],
    ["anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"],
  ];

  it.each(snapshots)("resolves %s %s like %s", (provider, snapshot, entry) => {
    expect(table.pricesFor(provider, snapshot)).toEqual(table.pricesFor(provider, entry));
  });

  it("answers a name resolved by prefix the same again, per provider, and resolves names too long to remember", () => {
    const fresh = loadPriceTable();
    const gpt = fresh.pricesFor("openai", "gpt-4o-mini");
    expect(fresh.pricesFor("openai", "gpt-4o-mini-2024-07-18")).toEqual(gpt);
    expect(fresh.pricesFor("openai", "gpt-4o-mini-2024-07-18")).toEqual(gpt);
    // The same name asked of the other provider must not find what OpenAI's lookup remembered.
    expect(fresh.pricesFor("anthropic", "gpt-4o-mini-2024-07-18")).toBeNull();
    expect(fresh.pricesFor("anthropic", "gpt-4o-mini-2024-07-18")).toBeNull();
    const long = `gpt-4o-mini-${"x".repeat(300)}`;
    expect(fresh.pricesFor("openai", long)).toEqual(gpt);
    expect(fresh.pricesFor("openai", long)).toEqual(gpt);
  });

  it("keeps resolving after more distinct names than it remembers", () => {
    const fresh = loadPriceTable();
    for (let index = 0; index < 3_000; index += 1) expect(fresh.pricesFor("openai", `gpt-4o-${index}`)?.inputNanoUsdPerMTok).toBe(2_500_000_000);
    expect(fresh.pricesFor("openai", "unknown-0")).toBeNull();
    expect(fresh.pricesFor("openai", "gpt-4o-0")?.inputNanoUsdPerMTok).toBe(2_500_000_000);
  });

  it("prefers an exact entry over a shorter prefix", () => {
    // This snapshot kept its launch price.
    expect(table.pricesFor("openai", "gpt-4o-2024-05-13")?.inputNanoUsdPerMTok).toBe(5_000_000_000);
    expect(table.pricesFor("openai", "gpt-4o")?.inputNanoUsdPerMTok).toBe(2_500_000_000);
  });

  it("knows no price for an unknown model, a name that only starts like one, or another provider's model", () => {
    expect(table.pricesFor("openai", "gpt-unknown")).toBeNull();
    expect(table.pricesFor("openai", "gpt-4oo")).toBeNull();
    expect(table.pricesFor("openai", "ft:gpt-4o-mini-2024-07-18:org::abc")).toBeNull();
    expect(table.pricesFor("openai", "")).toBeNull();
    expect(table.pricesFor("openai", "constructor")).toBeNull();
    expect(table.pricesFor("anthropic", "gpt-4o")).toBeNull();
    expect(table.pricesFor("openai", "claude-sonnet-4-5")).toBeNull();
  });
});

describe("an override price file", () => {
  it("replaces the shipped table", () => {
    const file = writePriceFile("override.json", {
      version: "2030-01-01",
      models: { "house-model": { provider: "openai", input: 0.000000001, output: 4, cachedInput: 0 } },
    });
    const table = loadPriceTable({ file });
    expect(table.version).toBe("2030-01-01");
    expect(table.pricesFor("openai", "house-model-v2")).toEqual({
      inputNanoUsdPerMTok: 1,
      outputNanoUsdPerMTok: 4_000_000_000,
      cachedInputNanoUsdPerMTok: 0,
      cacheWriteNanoUsdPerMTok: 1,
    });
    expect(table.pricesFor("openai", "gpt-4o")).toBeNull();
  });

  it("is refused when missing or not JSON, without quoting its content", () => {
    expect(loadError(join(directory, "missing.json")).problems).toEqual(["cannot be read (ENOENT)"]);
    const error = loadError(writePriceFile("broken.json", '{"version": "x", "models": SECRET-LOOKING-TEXT}'));
    expect(error.problems).toEqual(["is not valid JSON"]);
    expect(error.message).not.toContain("SECRET-LOOKING-TEXT");
  });

  it("is refused with every bad entry named", () => {
    const file = writePriceFile(
      "bad.json",
      '{"models": {' +
        '"gpt-4.1": {"provider": "openai", "input": -1, "output": 1},' +
        '"huge": {"provider": "openai", "input": 1e309, "output": 1},' +
        '"typo": {"provider": "openai", "input": 1, "output": 1, "cachedinput": 1},' +
        '"other": {"provider": "mistral", "input": 1, "output": 1},' +
        '"text": {"provider": "openai", "input": "1", "output": 1},' +
        '"bad name!": {"provider": "openai", "input": 1, "output": 1}' +
        "}}",
    );
    const problems = loadError(file).problems.join("\n");
    expect(problems).toMatch(/^version: /m);
    expect(problems).toMatch(/^models\["gpt-4\.1"\]\.input: /m);
    expect(problems).toMatch(/^models\.huge\.input: /m);
    expect(problems).toMatch(/^models\.typo: .*cachedinput/m);
    expect(problems).toMatch(/^models\.other\.provider: /m);
    expect(problems).toMatch(/^models\.text\.input: /m);
    expect(problems).toMatch(/^models\["bad name!"\]: /m);
  });

  it("is refused when a price is finer than one nano-USD per million tokens", () => {
    const file = writePriceFile("fine.json", { version: "v", models: { m: { provider: "openai", input: 0.0000000001, output: 1 } } });
    expect(loadError(file).problems).toEqual(["models.m.input: 1e-10 has more than nine decimal places"]);
  });
});
