import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { PROVIDER_IDS } from "../lib/domain.js";
import type { ProviderId } from "../lib/domain.js";
import type { Usage } from "../lib/usage.js";
import type { UnitPrices } from "../store/ports.js";

/** The price table that ships with Keyport; `../../pricing` is the package root from both `src/usage` and `dist/usage`. */
const DEFAULT_PRICE_FILE = new URL("../../pricing/prices.json", import.meta.url);

const NANO_PER_USD = 1_000_000_000;
const TOKENS_PER_MILLION = 1_000_000n;

/** Model names as providers spell them, including fine-tune and snapshot suffixes. */
const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$/;

const usdPerMillionTokens = z.number().nonnegative().max(1_000_000, "must be at most 1,000,000 USD per million tokens");

const priceFileSchema = z.strictObject({
  version: z.string().min(1).max(64),
  note: z.string().optional(),
  models: z.record(
    z.string().regex(MODEL_NAME_PATTERN, "model names are letters, digits and . _ : @ / -"),
    z.strictObject({
      provider: z.enum(PROVIDER_IDS),
      input: usdPerMillionTokens,
      output: usdPerMillionTokens,
      /** Cache reads; defaults to `input` (no discount) when the model has no cache price. */
      cachedInput: usdPerMillionTokens.optional(),
      /** Cache writes; defaults to `input` when the provider charges nothing extra for them. */
      cacheWrite: usdPerMillionTokens.optional(),
    }),
  ),
});

/** Unit prices by model name, for one provider. */
type ProviderPrices = ReadonlyMap<string, UnitPrices>;

/** The loaded price table. */
export type PriceTable = {
  /** The table's `version` (the date its prices took effect), for logs and `/readyz`. */
  readonly version: string;
  /**
   * Unit prices of `model` at `provider`, in integer nano-USD per million tokens, or null when
   * the table has no price for it. The exact name wins; otherwise the longest entry `name` such
   * that the model starts with `name-` (a dated snapshot: `gpt-4o-2024-08-06` → `gpt-4o`).
   */
  pricesFor(provider: ProviderId, model: string): UnitPrices | null;
};

/** A price file that cannot be read or does not hold a valid table; `problems` names each bad entry. */
export class PriceTableError extends Error {
  readonly file: string;
  readonly problems: readonly string[];

  constructor(file: string, problems: readonly string[]) {
    super(`Price file ${file} is invalid:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "PriceTableError";
    this.file = file;
    this.problems = problems;
  }
}

/** `models["gpt-4.1"].input`: model names contain dots and dashes, so non-identifiers are quoted. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(file)";
  return path
    .map((segment, index) => {
      const text = String(segment);
      if (/^[A-Za-z_$][\w$]*$/.test(text)) return index === 0 ? text : `.${text}`;
      return `[${JSON.stringify(text)}]`;
    })
    .join("");
}

/** USD per million tokens → nano-USD per million tokens, refusing sub-nano precision. */
function toNano(usd: number, path: string, problems: string[]): number {
  const scaled = usd * NANO_PER_USD;
  const nano = Math.round(scaled);
  // Decimal prices are not exact doubles (0.075 × 1e9 = 74999999.99999999); anything further off
  // than float noise has more than nine decimals.
  if (Math.abs(scaled - nano) > 1e-3) problems.push(`${path}: ${usd} has more than nine decimal places`);
  return nano;
}

function readPriceFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : "unknown error";
    throw new PriceTableError(path, [`cannot be read (${code})`]);
  }
  try {
    return JSON.parse(text);
  } catch {
    // The parser's own message quotes the file's text; the position is not worth that.
    throw new PriceTableError(path, ["is not valid JSON"]);
  }
}

/** The entry whose name is the longest `<name>-` prefix of `model` (a dated or suffixed variant). */
function findByPrefix(prices: ProviderPrices, model: string): UnitPrices | null {
  let best: { name: string; prices: UnitPrices } | undefined;
  for (const [name, unitPrices] of prices) {
    if (model.startsWith(`${name}-`) && (best === undefined || name.length > best.name.length)) best = { name, prices: unitPrices };
  }
  return best?.prices ?? null;
}

/**
 * Models resolved by prefix remembered per provider. Providers answer with dated names
 * (`gpt-4o-mini-2024-07-18`) that match no entry exactly, and the prefix search walks the whole
 * table on every call. Bounded in entries and name length, because a requested model name comes
 * from the client: when full, it starts over.
 */
const RESOLVED_MODELS_MAX = 1_024;
const RESOLVED_NAME_MAX_LENGTH = 256;

function createPriceLookup(prices: ProviderPrices): (model: string) => UnitPrices | null {
  const resolved = new Map<string, UnitPrices | null>();
  return (model) => {
    const exact = prices.get(model);
    if (exact !== undefined) return exact;
    const known = resolved.get(model);
    if (known !== undefined) return known;
    const found = findByPrefix(prices, model);
    if (model.length > RESOLVED_NAME_MAX_LENGTH) return found;
    if (resolved.size >= RESOLVED_MODELS_MAX) resolved.clear();
    resolved.set(model, found);
    return found;
  };
}

/**
 * Loads and validates the price table: `options.file` when given (`KEYPORT_PRICING_FILE`), else
 * the table shipped in `pricing/prices.json`. Throws `PriceTableError` naming every bad entry
 * (prices must be finite, non-negative, whole nano-USD).
 */
export function loadPriceTable(options: { file?: string } = {}): PriceTable {
  const path = options.file ?? fileURLToPath(DEFAULT_PRICE_FILE);
  const parsed = priceFileSchema.safeParse(readPriceFile(path));
  if (!parsed.success) {
    throw new PriceTableError(
      path,
      parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`),
    );
  }
  const problems: string[] = [];
  const byProvider = new Map<ProviderId, Map<string, UnitPrices>>(PROVIDER_IDS.map((provider) => [provider, new Map()]));
  for (const [model, entry] of Object.entries(parsed.data.models)) {
    const at = (field: string): string => formatPath(["models", model, field]);
    const input = toNano(entry.input, at("input"), problems);
    byProvider.get(entry.provider)?.set(model, {
      inputNanoUsdPerMTok: input,
      outputNanoUsdPerMTok: toNano(entry.output, at("output"), problems),
      cachedInputNanoUsdPerMTok: entry.cachedInput === undefined ? input : toNano(entry.cachedInput, at("cachedInput"), problems),
      cacheWriteNanoUsdPerMTok: entry.cacheWrite === undefined ? input : toNano(entry.cacheWrite, at("cacheWrite"), problems),
    });
  }
  if (problems.length > 0) throw new PriceTableError(path, problems);
  const lookups = new Map([...byProvider].map(([provider, prices]) => [provider, createPriceLookup(prices)]));
  return {
    version: parsed.data.version,
    pricesFor(provider: ProviderId, model: string): UnitPrices | null {
      return lookups.get(provider)?.(model) ?? null;
    },
  };
}

/** A token count as a BigInt; a count that is not a non-negative integer counts as not reported. */
function toTokenCount(value: number | undefined): bigint | undefined {
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

function toPrice(value: number): bigint | undefined {
  return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

/**
 * Estimated cost of one call in integer nano-USD, or null when it is unknown: no prices for the
 * model, or no token count reported at all. A count that is missing while others are reported
 * adds nothing. Input tokens include cached and cache-write tokens, so the uncached part is
 * `input − cached − cacheWrite` (never below 0). Products are summed exactly in BigInt and
 * divided by one million once, rounding half up.
 */
export function costOf(usage: Usage, prices: UnitPrices | null): number | null {
  if (prices === null) return null;
  const input = toTokenCount(usage.inputTokens);
  const output = toTokenCount(usage.outputTokens);
  const cached = toTokenCount(usage.cachedInputTokens);
  const cacheWrite = toTokenCount(usage.cacheWriteTokens);
  if (input === undefined && output === undefined && cached === undefined && cacheWrite === undefined) return null;

  const inputPrice = toPrice(prices.inputNanoUsdPerMTok);
  const outputPrice = toPrice(prices.outputNanoUsdPerMTok);
  const cachedPrice = toPrice(prices.cachedInputNanoUsdPerMTok);
  const cacheWritePrice = toPrice(prices.cacheWriteNanoUsdPerMTok);
  // Prices come from a validated table; anything else is treated as "no price", not as zero.
  if (inputPrice === undefined || outputPrice === undefined || cachedPrice === undefined || cacheWritePrice === undefined) return null;

  const uncachedRaw = (input ?? 0n) - (cached ?? 0n) - (cacheWrite ?? 0n);
  const uncached = uncachedRaw > 0n ? uncachedRaw : 0n;
  const total =
    uncached * inputPrice + (cached ?? 0n) * cachedPrice + (cacheWrite ?? 0n) * cacheWritePrice + (output ?? 0n) * outputPrice;
  const cost = (total + TOKENS_PER_MILLION / 2n) / TOKENS_PER_MILLION;
  return cost <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(cost) : null;
}
