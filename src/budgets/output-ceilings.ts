/**
 * The most output tokens a model may produce in one answer, as the providers document it, for a
 * call that sets no `max_tokens`. Matched by the longest prefix; anything unknown gets
 * `DEFAULT_OUTPUT_CEILING`, which is at or above every documented ceiling here, so a new model is
 * never under-reserved.
 * @see https://platform.openai.com/docs/models
 * @see https://docs.anthropic.com/en/docs/about-claude/models/overview
 */
const CEILINGS: ReadonlyArray<readonly [prefix: string, maxOutputTokens: number]> = [
  ["gpt-5", 128_000],
  ["gpt-4.1", 32_768],
  ["gpt-4o", 16_384],
  ["chatgpt-4o", 16_384],
  ["gpt-4-turbo", 4_096],
  ["gpt-4", 8_192],
  ["gpt-3.5-turbo", 4_096],
  ["o1-mini", 65_536],
  ["o1", 100_000],
  ["o3", 100_000],
  ["o4-mini", 100_000],
  ["text-embedding", 0],
  ["claude-opus-4-1", 32_000],
  ["claude-opus-4", 32_000],
  ["claude-sonnet-4", 64_000],
  ["claude-haiku-4", 64_000],
  ["claude-3-7-sonnet", 64_000],
  ["claude-3-5-sonnet", 8_192],
  ["claude-3-5-haiku", 8_192],
  ["claude-3-opus", 4_096],
  ["claude-3-haiku", 4_096],
];

/** For models the table does not know: the largest documented ceiling above. */
export const DEFAULT_OUTPUT_CEILING = 128_000;

// Longest prefix first, so `o1-mini` wins over `o1` and `gpt-4o` over `gpt-4`.
const BY_LENGTH = [...CEILINGS].sort((a, b) => b[0].length - a[0].length);

/** The documented output ceiling of `model`, or the conservative default. */
export function outputCeilingOf(model: string | undefined): number {
  if (model === undefined || model === "") return DEFAULT_OUTPUT_CEILING;
  for (const [prefix, ceiling] of BY_LENGTH) {
    if (model === prefix || model.startsWith(prefix)) return ceiling;
  }
  return DEFAULT_OUTPUT_CEILING;
}
