import type { MockCall, MockReply } from "./mock-reply.js";
import { SSE_HEADERS, jsonReply, sseEvent } from "./mock-reply.js";
import {
  cachedInputTokens,
  countInputTokens,
  generateReply,
  isRecord,
  positiveIntegerField,
  textOfContent,
} from "./mock-text.js";
import { openAiHeaders, openAiInvalidParameter } from "./openai-errors.js";

const MAX_CHOICES = 8;

/**
 * `POST /v1/chat/completions`, plain or streamed. Streams carry `"usage": null` on every chunk;
 * only with `stream_options.include_usage` a last chunk with `choices: []` and the totals comes
 * before `data: [DONE]`, as OpenAI documents.
 */
export function handleOpenAiChatCompletion(call: MockCall): MockReply {
  const body = isRecord(call.body) ? call.body : {};
  const messages = body.messages;
  if (typeof body.model !== "string" || body.model === "") {
    return openAiInvalidParameter(call, "you must provide a model parameter", "model");
  }
  if (!Array.isArray(messages) || messages.length === 0) {
    return openAiInvalidParameter(call, "Missing required parameter: 'messages'.", "messages");
  }
  const choiceCount = positiveIntegerField(body, "n") ?? 1;
  const maxCompletion = positiveIntegerField(body, "max_completion_tokens");
  const maxTokens = maxCompletion === undefined ? positiveIntegerField(body, "max_tokens") : maxCompletion;
  if (choiceCount === "invalid" || choiceCount > MAX_CHOICES) {
    return openAiInvalidParameter(call, `Invalid 'n': must be an integer from 1 to ${MAX_CHOICES}.`, "n");
  }
  if (maxTokens === "invalid") {
    return openAiInvalidParameter(call, "Invalid 'max_tokens': must be a positive integer.", "max_tokens");
  }

  const texts = messages.map((message) => (isRecord(message) ? textOfContent(message.content) : ""));
  const lastUser = [...messages].reverse().find((message) => isRecord(message) && message.role === "user");
  const reply = generateReply(isRecord(lastUser) ? textOfContent(lastUser.content) : (texts.at(-1) ?? ""), maxTokens);
  const promptTokens = countInputTokens(texts.join("\n"));
  const completionTokens = reply.words.length * choiceCount;
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedInputTokens(body, promptTokens), audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  const finishReason = reply.truncated ? "length" : "stop";
  const envelope = {
    id: `chatcmpl-mock${call.sequence}`,
    created: Math.floor(call.nowMs / 1000),
    model: body.model,
    system_fingerprint: "fp_mock",
    service_tier: "default",
  };

  if (body.stream !== true) {
    const choices = Array.from({ length: choiceCount }, (_, index) => ({
      index,
      message: { role: "assistant", content: reply.words.join(" "), refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: finishReason,
    }));
    return jsonReply(200, openAiHeaders(call, false), { ...envelope, object: "chat.completion", choices, usage });
  }

  const chunk = (choices: unknown[], chunkUsage: unknown) =>
    sseEvent({ ...envelope, object: "chat.completion.chunk", choices, usage: chunkUsage });
  const events: string[] = [];
  for (let index = 0; index < choiceCount; index += 1) {
    const delta = (content: Record<string, unknown>, finish: string | null) => ({
      index,
      delta: content,
      logprobs: null,
      finish_reason: finish,
    });
    events.push(chunk([delta({ role: "assistant", content: "", refusal: null }, null)], null));
    reply.words.forEach((word, position) => {
      events.push(chunk([delta({ content: position === 0 ? word : ` ${word}` }, null)], null));
    });
    events.push(chunk([delta({}, finishReason)], null));
  }
  const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
  if (streamOptions.include_usage === true) events.push(chunk([], usage));
  events.push(sseEvent("[DONE]"));
  return { kind: "sse", headers: { ...openAiHeaders(call, false), ...SSE_HEADERS }, events };
}
