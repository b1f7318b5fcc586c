import { NO_BODY, noUsageAnswer, plainStreamObserver, prepareJsonBody } from "../gateway-common.js";
import type { GatewayEndpoint } from "../spec.js";
import { anthropicUsageFromMessage, anthropicUsageFromTokenCount, createAnthropicStreamObserver } from "./anthropic-usage.js";

/**
 * The Anthropic endpoints Keyport serves: the one place to add one. Paths are under the base URL,
 * which has no version path (`https://api.anthropic.com`); `beta=true` is how the SDK's beta
 * namespace marks its calls. Routes are Keyport's own: under `/anthropic`, plus the `/v1/messages`
 * alias.
 * @see https://docs.claude.com/en/api/messages
 * @see https://docs.claude.com/en/api/models-list
 */
export const ANTHROPIC_ENDPOINTS: readonly GatewayEndpoint[] = Object.freeze([
  {
    name: "messages",
    method: "POST",
    routes: ["/anthropic/v1/messages", "/v1/messages"],
    upstreamPath: "/v1/messages",
    query: ["beta"],
    isBilled: true,
    prepare: (body) => prepareJsonBody(body, { canStream: true }),
    usageFromResponse: anthropicUsageFromMessage,
    createStreamObserver: createAnthropicStreamObserver,
  },
  {
    name: "messages.count_tokens",
    method: "POST",
    routes: ["/anthropic/v1/messages/count_tokens"],
    upstreamPath: "/v1/messages/count_tokens",
    query: ["beta"],
    isBilled: false,
    prepare: (body) => prepareJsonBody(body, { canStream: false }),
    usageFromResponse: anthropicUsageFromTokenCount,
    createStreamObserver: plainStreamObserver,
  },
  {
    name: "models",
    method: "GET",
    routes: ["/anthropic/v1/models"],
    upstreamPath: "/v1/models",
    query: ["limit", "after_id", "before_id", "beta"],
    isBilled: false,
    prepare: () => NO_BODY,
    usageFromResponse: noUsageAnswer,
    createStreamObserver: plainStreamObserver,
  },
] satisfies GatewayEndpoint[]);
