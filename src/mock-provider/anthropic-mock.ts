import { handleAnthropicCountTokens, handleAnthropicMessages } from "./anthropic-messages.js";
import { anthropicError, anthropicHeaders, anthropicRateLimited } from "./anthropic-errors.js";
import type { MockCall, MockReply } from "./mock-reply.js";
import { jsonReply } from "./mock-reply.js";

/** Models the mock lists (creation dates are placeholders); any model name is accepted on `messages`. */
const ANTHROPIC_MODELS: ReadonlyArray<{ id: string; display_name: string; created_at: string }> = [
  { id: "claude-sonnet-4-6", display_name: "Claude Sonnet 4.6", created_at: "2026-01-01T00:00:00Z" },
  { id: "claude-opus-4-7", display_name: "Claude Opus 4.7", created_at: "2026-01-01T00:00:00Z" },
  { id: "claude-haiku-4-5", display_name: "Claude Haiku 4.5", created_at: "2025-10-15T00:00:00Z" },
];

/**
 * Anthropic's side of the mock: key behaviour first, then the route. An account without credit
 * gets Anthropic's 400 "credit balance is too low" on every route, including the models list.
 */
export function handleAnthropicCall(call: MockCall): MockReply {
  switch (call.behaviour) {
    case undefined:
      return anthropicError(call, 401, "authentication_error", "x-api-key header is required");
    case "invalid":
      return anthropicError(call, 401, "authentication_error", "invalid x-api-key");
    case "rate_limited":
      return anthropicRateLimited(call);
    case "no_credits":
      return anthropicError(
        call,
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
      );
    case "valid":
      break;
  }
  if (call.method === "GET" && (call.path === "/v1/models" || call.path.startsWith("/v1/models/"))) {
    return listOrGetModel(call);
  }
  if (call.method === "POST" && (call.path === "/v1/messages" || call.path === "/v1/messages/count_tokens")) {
    if (call.isMalformedJson) {
      return anthropicError(call, 400, "invalid_request_error", "The request body is not valid JSON.");
    }
    return call.path === "/v1/messages" ? handleAnthropicMessages(call) : handleAnthropicCountTokens(call);
  }
  return anthropicError(call, 404, "not_found_error", "Not Found");
}

function listOrGetModel(call: MockCall): MockReply {
  const models = ANTHROPIC_MODELS.map((model) => ({ type: "model", ...model }));
  if (call.path === "/v1/models") {
    return jsonReply(200, anthropicHeaders(call, false), {
      data: models,
      has_more: false,
      first_id: models[0]?.id ?? null,
      last_id: models.at(-1)?.id ?? null,
    });
  }
  const id = decodeURIComponent(call.path.slice("/v1/models/".length));
  const model = models.find((candidate) => candidate.id === id);
  if (model !== undefined) return jsonReply(200, anthropicHeaders(call, false), model);
  return anthropicError(call, 404, "not_found_error", `model: ${id}`);
}
