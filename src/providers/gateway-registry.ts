import type { ProviderId } from "../lib/domain.js";
import { createAnthropicGateway } from "./anthropic/anthropic-gateway.js";
import type { GatewayAdapter } from "./gateway-spec.js";
import { createOpenAiGateway } from "./openai/openai-gateway.js";

/**
 * One gateway adapter per provider, each bound to its configured base URL (never to anything
 * taken from a request). OpenAI's base includes `/v1`; Anthropic's has no version path.
 * @throws Error when a base URL is not an absolute http(s) URL
 */
export function createGatewayAdapters(options: {
  openai: { baseUrl: string; platformAccount?: { organization: string | undefined; project: string | undefined } };
  anthropic: { baseUrl: string };
}): Readonly<Record<ProviderId, GatewayAdapter>> {
  return Object.freeze({
    openai: createOpenAiGateway(options.openai),
    anthropic: createAnthropicGateway(options.anthropic),
  });
}
