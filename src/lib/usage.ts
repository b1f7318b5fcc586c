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

/**
 * A rough token count of a request body: about four bytes per token for English text and the JSON
 * around it. Only for a stream cut before the provider reported its input (OpenAI sends usage in
 * its last chunk only); it errs high for JSON-heavy bodies.
 */
export function estimateTokensOfBytes(bytes: number): number {
  return Math.ceil(bytes / 4);
}

/**
 * The usage of a stream cut before it ended (by the client, the provider or a shutdown): what the
 * provider reported so far, with the gaps estimated. Output is the larger of the reported count
 * (Anthropic's `message_start` says 1 until the closing `message_delta`) and the output deltas
 * streamed (about one token each); input is the reported count, else `inputEstimate`.
 */
export function cutStreamUsage(reported: Usage, outputDeltas: number, inputEstimate: number): Usage {
  return {
    inputTokens: reported.inputTokens ?? inputEstimate,
    outputTokens: Math.max(reported.outputTokens ?? 0, outputDeltas),
    cachedInputTokens: reported.cachedInputTokens,
    cacheWriteTokens: reported.cacheWriteTokens,
  };
}
