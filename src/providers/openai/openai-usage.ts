import { NO_USAGE, type Usage } from "../../lib/usage.js";
import { createSseObserver, hasObjectField, isRecord, readEventFields, type SseInspector, stringField, tokenCount } from "../gateway-common.js";
import { fieldName, readTopLevelFields } from "../json-fields.js";
import type { StreamObserver } from "../spec.js";
import { readSseEventName, startsWithBytes } from "../sse.js";

const USAGE_KEY = Buffer.from('"usage":');
/** How OpenAI sends an error inside a chat stream: a data-only event whose object starts with `error`. */
const ERROR_CHUNK_PREFIX = Buffer.from('data: {"error"');
/** Where a chat chunk carries generated text or tool-call arguments (an empty string is no output). */
const CHAT_OUTPUT_KEYS = [Buffer.from('"content":"'), Buffer.from('"arguments":"'), Buffer.from('"refusal":"')];
const QUOTE = 0x22;

/** The fields of a JSON answer that usage is read from; the rest is relayed unread. */
const ANSWER_FIELDS = [fieldName("model"), fieldName("usage")];

/** How one OpenAI API reports usage: chat completions and embeddings, or the Responses API. */
export type OpenAiUsageShape = "chat" | "responses";

/** Usage and model of a whole JSON answer; a malformed body gives `NO_USAGE`, never an exception. */
export function openAiUsageFromResponse(shape: OpenAiUsageShape, body: Buffer): { usage: Usage; model: string | undefined } {
  const json = readTopLevelFields(body, ANSWER_FIELDS);
  if (json === undefined) return { usage: NO_USAGE, model: undefined };
  const usage = isRecord(json.usage) ? readUsage(shape, json.usage) : NO_USAGE;
  return { usage, model: stringField(json, "model") };
}

function readUsage(shape: OpenAiUsageShape, usage: Record<string, unknown>): Usage {
  return shape === "chat" ? readChatUsage(usage) : readResponsesUsage(usage);
}

/**
 * Chat completions and embeddings: `prompt_tokens` already includes the cached tokens.
 * Embeddings have no completion tokens, so `outputTokens` stays `undefined`.
 * @see https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage
 */
function readChatUsage(usage: Record<string, unknown>): Usage {
  const details = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {};
  return {
    inputTokens: tokenCount(usage.prompt_tokens),
    outputTokens: tokenCount(usage.completion_tokens),
    cachedInputTokens: tokenCount(details.cached_tokens),
    cacheWriteTokens: undefined,
  };
}

/**
 * Responses API: `input_tokens` already includes the cached tokens.
 * @see https://platform.openai.com/docs/api-reference/responses/object#responses/object-usage
 */
function readResponsesUsage(usage: Record<string, unknown>): Usage {
  const details = isRecord(usage.input_tokens_details) ? usage.input_tokens_details : {};
  return {
    inputTokens: tokenCount(usage.input_tokens),
    outputTokens: tokenCount(usage.output_tokens),
    cachedInputTokens: tokenCount(details.cached_tokens),
    cacheWriteTokens: undefined,
  };
}

/**
 * A stream's observer. Only chat streams have a usage chunk to hide (`hideUsageChunk`, when
 * Keyport asked for it); every other stream passes through unfiltered.
 */
export function createOpenAiStreamObserver(shape: OpenAiUsageShape, options: { hideUsageChunk: boolean }): StreamObserver {
  const isFiltering = options.hideUsageChunk && shape === "chat";
  return createSseObserver(createOpenAiInspector(shape === "responses", isFiltering), { isFiltering });
}

/** What the inspector reads of a chat chunk, and of a Responses API event (its `response`). */
const CHAT_EVENT_FIELDS = [fieldName("usage"), fieldName("model"), fieldName("choices")];
const RESPONSES_EVENT_FIELDS = [fieldName("response")];

/**
 * Chat streams: every chunk carries `"usage":null` or no usage at all, except the usage chunk
 * (empty `choices`) and, on some compatible upstreams, a last chunk with both choices and usage.
 * Responses API streams: `response.completed` (also `.incomplete`, `.failed`) carries
 * `response.usage`. Only events with a non-null `usage` object are parsed; errors are told by
 * their first bytes (chat) or event name (Responses API).
 */
function createOpenAiInspector(isResponses: boolean, isFiltering: boolean): SseInspector {
  let usage: Usage = NO_USAGE;
  let model: string | undefined;
  let sawError = false;
  let outputDeltas = 0;
  return {
    inspect(event) {
      if (isResponses ? isResponsesErrorEvent(event) : startsWithBytes(event, ERROR_CHUNK_PREFIX)) sawError = true;
      if (isResponses ? isResponsesDeltaEvent(event) : hasChatOutput(event)) outputDeltas += 1;
      if (!hasObjectField(event, USAGE_KEY)) return "keep";
      const json = readEventFields(event, isResponses ? RESPONSES_EVENT_FIELDS : CHAT_EVENT_FIELDS);
      if (json === undefined) return "keep";
      const holder = isResponses ? json.response : json;
      if (!isRecord(holder) || !isRecord(holder.usage)) return "keep";
      // Totals, not increments: a later report replaces an earlier one.
      usage = isResponses ? readResponsesUsage(holder.usage) : readChatUsage(holder.usage);
      model = stringField(holder, "model") ?? model;
      // Only the usage-only chunk is Keyport's addition; a chunk that also has choices is the client's.
      return isFiltering && Array.isArray(json.choices) && json.choices.length === 0 ? "drop" : "keep";
    },
    usage: () => usage,
    model: () => model,
    sawError: () => sawError,
    outputDeltas: () => outputDeltas,
  };
}

/** Whether a chat chunk carries a non-empty text, refusal or tool-argument delta (a byte search, no parse). */
function hasChatOutput(event: Buffer): boolean {
  for (const key of CHAT_OUTPUT_KEYS) {
    const at = event.indexOf(key);
    if (at !== -1 && event[at + key.length] !== QUOTE) return true;
  }
  return false;
}

/** Responses API output arrives as `response.output_text.delta`, `response.function_call_arguments.delta`, … */
function isResponsesDeltaEvent(event: Buffer): boolean {
  return readSseEventName(event)?.endsWith(".delta") === true;
}

function isResponsesErrorEvent(event: Buffer): boolean {
  const name = readSseEventName(event);
  return name === "error" || name === "response.failed";
}
