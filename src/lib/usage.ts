/**
 * Token usage of one call as the provider reported it. `undefined` means the provider did not
 * say (an interrupted stream, an endpoint without usage), which is not the same as 0.
 */
export type Usage = {
  /**
   * All input tokens, cached ones included. OpenAI's `prompt_tokens` already includes cached
   * tokens; for Anthropic it is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`.
   */
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  /** Input tokens served from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`). */
  cachedInputTokens: number | undefined;
  /** Input tokens written to the prompt cache (Anthropic `cache_creation_input_tokens`). */
  cacheWriteTokens: number | undefined;
};

export const NO_USAGE: Usage = Object.freeze({
  inputTokens: undefined,
  outputTokens: undefined,
  cachedInputTokens: undefined,
  cacheWriteTokens: undefined,
});

export function totalTokens(usage: Usage): number {
  return (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0);
}
