import { anthropicError, anthropicHeaders } from "./anthropic-errors.js";
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

type ParsedMessages = { model: string; maxTokens: number | undefined; texts: string[]; lastUserText: string };

/**
 * `POST /v1/messages`, plain or streamed. Anthropic's `input_tokens` excludes cache reads, so a
 * cached request reports `input_tokens + cache_read_input_tokens` as its whole input.
 */
export function handleAnthropicMessages(call: MockCall): MockReply {
  const parsed = parseMessagesRequest(call, true);
  if ("kind" in parsed) return parsed;
  const body = isRecord(call.body) ? call.body : {};
  const reply = generateReply(parsed.lastUserText, parsed.maxTokens);
  const totalInput = countInputTokens(parsed.texts.join("\n"));
  const cacheRead = cachedInputTokens(body, totalInput);
  const outputTokens = reply.words.length;
  const usage = {
    input_tokens: totalInput - cacheRead,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cacheRead,
    output_tokens: outputTokens,
    service_tier: "standard",
  };
  const stopReason = reply.truncated ? "max_tokens" : "end_turn";
  const message = {
    id: `msg_mock${call.sequence}`,
    type: "message",
    role: "assistant",
    model: parsed.model,
    content: [{ type: "text", text: reply.words.join(" ") }],
    stop_reason: stopReason,
    stop_sequence: null,
    usage,
  };
  if (body.stream !== true) return jsonReply(200, anthropicHeaders(call, false), message);

  const events: string[] = [];
  const emit = (type: string, fields: Record<string, unknown>) => events.push(sseEvent({ type, ...fields }, type));
  emit("message_start", {
    message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
  });
  emit("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  emit("ping", {});
  reply.words.forEach((word, position) => {
    emit("content_block_delta", { index: 0, delta: { type: "text_delta", text: position === 0 ? word : ` ${word}` } });
  });
  emit("content_block_stop", { index: 0 });
  // Two cumulative snapshots: a reader that sums `output_tokens` instead of keeping the latest
  // over-counts, which is exactly the bug this mock should expose.
  emit("message_delta", {
    delta: { stop_reason: null, stop_sequence: null },
    usage: { output_tokens: Math.ceil(outputTokens / 2) },
  });
  emit("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } });
  emit("message_stop", {});
  return { kind: "sse", headers: { ...anthropicHeaders(call, false), ...SSE_HEADERS }, events };
}

/** `POST /v1/messages/count_tokens`: the same input count `messages` would report. */
export function handleAnthropicCountTokens(call: MockCall): MockReply {
  const parsed = parseMessagesRequest(call, false);
  if ("kind" in parsed) return parsed;
  return jsonReply(200, anthropicHeaders(call, false), { input_tokens: countInputTokens(parsed.texts.join("\n")) });
}

function parseMessagesRequest(call: MockCall, needsMaxTokens: boolean): ParsedMessages | MockReply {
  const body = isRecord(call.body) ? call.body : {};
  const invalid = (message: string) => anthropicError(call, 400, "invalid_request_error", message);
  if (typeof body.model !== "string" || body.model === "") return invalid("model: Field required");
  const maxTokens = positiveIntegerField(body, "max_tokens");
  if (maxTokens === "invalid") return invalid("max_tokens: Input should be a positive integer");
  if (needsMaxTokens && maxTokens === undefined) return invalid("max_tokens: Field required");
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return invalid("messages: Field required");
  const system = textOfContent(body.system);
  const texts = [
    ...(system === "" ? [] : [system]),
    ...messages.map((item) => (isRecord(item) ? textOfContent(item.content) : "")),
  ];
  const lastUser = [...messages].reverse().find((item) => isRecord(item) && item.role === "user");
  return {
    model: body.model,
    maxTokens,
    texts,
    lastUserText: isRecord(lastUser) ? textOfContent(lastUser.content) : "",
  };
}
