import { handleOpenAiChatCompletion } from "./openai-chat.js";
import { handleOpenAiEmbeddings, handleOpenAiResponses } from "./openai-extra.js";
import type { MockCall, MockReply } from "./mock-reply.js";
import { jsonReply } from "./mock-reply.js";
import {
  openAiError,
  openAiHeaders,
  openAiInsufficientQuota,
  openAiInvalidKey,
  openAiRateLimited,
} from "./openai-errors.js";

/** Models the mock lists; any model name is accepted on inference routes. */
const OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini", "text-embedding-3-small"];

/**
 * OpenAI's side of the mock: key behaviour first (401, 429), then the route.
 * `no_credits` keys can list models but every inference route answers `insufficient_quota`,
 * which is how a real exhausted account looks.
 */
export function handleOpenAiCall(call: MockCall): MockReply {
  const isModelsRoute = call.method === "GET" && (call.path === "/v1/models" || call.path.startsWith("/v1/models/"));
  switch (call.behaviour) {
    case "invalid":
    case undefined:
      return openAiInvalidKey(call);
    case "rate_limited":
      return openAiRateLimited(call);
    case "no_credits":
      if (!isModelsRoute) return openAiInsufficientQuota(call);
      break;
    case "valid":
      break;
  }
  if (isModelsRoute) return listOrGetModel(call);
  if (call.method === "POST") {
    if (call.isMalformedJson) {
      return openAiError(call, 400, {
        message: "We could not parse the JSON body of your request. The body must be valid JSON.",
        type: "invalid_request_error",
        code: null,
      });
    }
    switch (call.path) {
      case "/v1/chat/completions":
        return handleOpenAiChatCompletion(call);
      case "/v1/embeddings":
        return handleOpenAiEmbeddings(call);
      case "/v1/responses":
        return handleOpenAiResponses(call);
      default:
        break;
    }
  }
  return openAiNotFound(call);
}

function openAiNotFound(call: MockCall): MockReply {
  return openAiError(call, 404, {
    message: `Invalid URL (${call.method} ${call.path})`,
    type: "invalid_request_error",
    code: null,
  });
}

function listOrGetModel(call: MockCall): MockReply {
  const toModel = (id: string) => ({ id, object: "model", created: 1_721_172_741, owned_by: "system" });
  if (call.path === "/v1/models") {
    return jsonReply(200, openAiHeaders(call, false), { object: "list", data: OPENAI_MODELS.map(toModel) });
  }
  const id = decodeURIComponent(call.path.slice("/v1/models/".length));
  if (OPENAI_MODELS.includes(id)) return jsonReply(200, openAiHeaders(call, false), toModel(id));
  return openAiError(call, 404, {
    message: `The model '${id}' does not exist`,
    type: "invalid_request_error",
    code: "model_not_found",
    param: "model",
  });
}
