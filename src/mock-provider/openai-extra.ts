import type { MockCall, MockReply } from "./mock-reply.js";
import { SSE_HEADERS, jsonReply, sseEvent } from "./mock-reply.js";
import {
  cachedInputTokens,
  countInputTokens,
  embeddingVector,
  encodeVectorBase64,
  generateReply,
  isRecord,
  positiveIntegerField,
  textOfContent,
} from "./mock-text.js";
import { openAiHeaders, openAiInvalidParameter } from "./openai-errors.js";

/** Vector length when the request sets no `dimensions`; small so benchmarks stay cheap. */
const DEFAULT_DIMENSIONS = 16;
const MAX_DIMENSIONS = 4096;

/** `POST /v1/embeddings`: one deterministic vector per input, floats or base64 as requested. */
export function handleOpenAiEmbeddings(call: MockCall): MockReply {
  const body = isRecord(call.body) ? call.body : {};
  if (typeof body.model !== "string" || body.model === "") {
    return openAiInvalidParameter(call, "you must provide a model parameter", "model");
  }
  const inputs = embeddingInputs(body.input);
  if (inputs === undefined) {
    return openAiInvalidParameter(call, "'input' must be a non-empty string or array.", "input");
  }
  const dimensions = positiveIntegerField(body, "dimensions") ?? DEFAULT_DIMENSIONS;
  if (dimensions === "invalid" || dimensions > MAX_DIMENSIONS) {
    return openAiInvalidParameter(call, `Invalid 'dimensions': must be an integer from 1 to ${MAX_DIMENSIONS}.`, "dimensions");
  }
  const isBase64 = body.encoding_format === "base64";
  const data = inputs.map((text, index) => {
    const vector = embeddingVector(text, dimensions);
    return { object: "embedding", index, embedding: isBase64 ? encodeVectorBase64(vector) : vector };
  });
  const promptTokens = inputs.reduce((sum, text) => sum + countInputTokens(text), 0);
  return jsonReply(200, openAiHeaders(call, false), {
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

/** Strings, string arrays, token arrays and arrays of token arrays, each turned into text. */
function embeddingInputs(input: unknown): string[] | undefined {
  if (typeof input === "string") return input === "" ? undefined : [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((item) => typeof item === "number")) return [input.join(" ")];
  const texts: string[] = [];
  for (const item of input) {
    if (typeof item === "string") texts.push(item);
    else if (Array.isArray(item)) texts.push(item.join(" "));
    else return undefined;
  }
  return texts;
}

/**
 * `POST /v1/responses`, kept simple: text input (a string or messages), one text output, and
 * when streamed the event sequence the `openai` SDK accumulates, ending in `response.completed`
 * with the usage.
 */
export function handleOpenAiResponses(call: MockCall): MockReply {
  const body = isRecord(call.body) ? call.body : {};
  if (typeof body.model !== "string" || body.model === "") {
    return openAiInvalidParameter(call, "you must provide a model parameter", "model");
  }
  const maxTokens = positiveIntegerField(body, "max_output_tokens");
  if (maxTokens === "invalid") {
    return openAiInvalidParameter(call, "Invalid 'max_output_tokens': must be a positive integer.", "max_output_tokens");
  }
  const texts = responsesInputTexts(body.input);
  const instructions = typeof body.instructions === "string" ? body.instructions : "";
  const reply = generateReply(texts.at(-1) ?? "", maxTokens);
  const inputTokens = countInputTokens([instructions, ...texts].join("\n"));
  const outputTokens = reply.words.length;
  const text = reply.words.join(" ");
  const messageId = `msg_mock${call.sequence}`;
  const part = { type: "output_text", text, annotations: [] };
  const message = { type: "message", id: messageId, status: "completed", role: "assistant", content: [part] };
  const response = {
    id: `resp_mock${call.sequence}`,
    object: "response",
    created_at: Math.floor(call.nowMs / 1000),
    status: reply.truncated ? "incomplete" : "completed",
    incomplete_details: reply.truncated ? { reason: "max_output_tokens" } : null,
    error: null,
    model: body.model,
    output: [message],
    output_text: text,
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: cachedInputTokens(body, inputTokens) },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: inputTokens + outputTokens,
    },
  };
  if (body.stream !== true) return jsonReply(200, openAiHeaders(call, false), response);

  const events: string[] = [];
  const emit = (type: string, fields: Record<string, unknown>) => {
    events.push(sseEvent({ type, sequence_number: events.length, ...fields }, type));
  };
  const inProgress = { ...response, status: "in_progress", incomplete_details: null, output: [], usage: null };
  const emptyMessage = { ...message, status: "in_progress", content: [] };
  const location = { item_id: messageId, output_index: 0, content_index: 0 };
  emit("response.created", { response: inProgress });
  emit("response.in_progress", { response: inProgress });
  emit("response.output_item.added", { output_index: 0, item: emptyMessage });
  emit("response.content_part.added", { ...location, part: { ...part, text: "" } });
  reply.words.forEach((word, position) => {
    emit("response.output_text.delta", { ...location, delta: position === 0 ? word : ` ${word}`, logprobs: [] });
  });
  emit("response.output_text.done", { ...location, text, logprobs: [] });
  emit("response.content_part.done", { ...location, part });
  emit("response.output_item.done", { output_index: 0, item: message });
  emit(reply.truncated ? "response.incomplete" : "response.completed", { response });
  return { kind: "sse", headers: { ...openAiHeaders(call, false), ...SSE_HEADERS }, events };
}

function responsesInputTexts(input: unknown): string[] {
  if (typeof input === "string") return [input];
  if (!Array.isArray(input)) return [];
  return input.map((item) => (isRecord(item) ? textOfContent(item.content) : ""));
}
