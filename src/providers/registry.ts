import { createAnthropicAdapter } from "./anthropic/anthropic-adapter.js";
import { createOpenAiAdapter } from "./openai/openai-adapter.js";
import type { ProviderAdapterOptions, ProviderRegistry } from "./spec.js";

/** Builds one adapter per provider from configuration-supplied endpoints and the shared dispatcher. */
export function createProviderRegistry(options: {
  openai: ProviderAdapterOptions;
  anthropic: ProviderAdapterOptions;
}): ProviderRegistry {
  return Object.freeze({
    openai: createOpenAiAdapter(options.openai),
    anthropic: createAnthropicAdapter(options.anthropic),
  });
}
