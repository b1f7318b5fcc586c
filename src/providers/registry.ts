import type { Dispatcher } from "undici";
import { createAnthropicAdapter } from "./anthropic/anthropic-adapter.js";
import { createOpenAiAdapter } from "./openai/openai-adapter.js";
import type { ProviderRegistry } from "./spec.js";
import { createUpstreamClient } from "./upstream-client.js";

/**
 * One adapter per provider, each with its one upstream client over the process's pooled
 * dispatcher, bound to its configured base URL (never to anything taken from a request).
 * OpenAI's base includes `/v1`; Anthropic's has no version path.
 * @throws Error when a base URL is not an absolute http(s) URL
 */
export function createProviderRegistry(options: {
  dispatcher: Dispatcher;
  /** Deadline for one key check, in milliseconds. */
  keyCheckTimeoutMs: number;
  openai: { baseUrl: string; platformAccount?: { organization: string | undefined; project: string | undefined } };
  anthropic: { baseUrl: string };
}): ProviderRegistry {
  const { dispatcher, keyCheckTimeoutMs } = options;
  const bind = (baseUrl: string) => ({ baseUrl, keyCheckTimeoutMs, upstream: createUpstreamClient({ dispatcher, baseUrl }) });
  return Object.freeze({
    openai: createOpenAiAdapter({ ...bind(options.openai.baseUrl), ...(options.openai.platformAccount === undefined ? {} : { platformAccount: options.openai.platformAccount }) }),
    anthropic: createAnthropicAdapter(bind(options.anthropic.baseUrl)),
  });
}
