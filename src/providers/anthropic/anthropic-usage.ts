import { NO_USAGE, type Usage } from "../../lib/usage.js";
import { createSseObserver, isRecord, readEventFields, type SseInspector, stringField, tokenCount } from "../gateway-common.js";
import { fieldName, readTopLevelFields } from "../json-fields.js";
import type { StreamObserver } from "../spec.js";
import { readSseEventName } from "../sse.js";

/** The fields of a JSON answer that usage is read from; the rest is relayed unread. */
const ANSWER_FIELDS = [fieldName("model"), fieldName("usage"), fieldName("input_tokens")];

/** Usage and model of a message; a malformed body gives `NO_USAGE`, never an exception. */
export function anthropicUsageFromMessage(body: Buffer): { usage: Usage; model: string | undefined } {
  const json = readTopLevelFields(body, ANSWER_FIELDS);
  if (json === undefined) return { usage: NO_USAGE, model: undefined };
  return { usage: isRecord(json.usage) ? toUsage(readUsageFields(json.usage)) : NO_USAGE, model: stringField(json, "model") };
}

/**
 * The input count of `count_tokens`: what the request *would* use. The call itself is free (the
 * endpoint is not billed), so it is recorded for information, never priced as consumed tokens.
 */
export function anthropicUsageFromTokenCount(body: Buffer): { usage: Usage; model: string | undefined } {
  const json = readTopLevelFields(body, ANSWER_FIELDS);
  return { usage: { ...NO_USAGE, inputTokens: tokenCount(json?.input_tokens) }, model: undefined };
}

/** Anthropic's usage fields as reported; `undefined` = not said. */
type UsageFields = {
  input: number | undefined;
  cacheRead: number | undefined;
  cacheWrite: number | undefined;
  output: number | undefined;
};

function readUsageFields(usage: Record<string, unknown>): UsageFields {
  return {
    input: tokenCount(usage.input_tokens),
    cacheRead: tokenCount(usage.cache_read_input_tokens),
    cacheWrite: tokenCount(usage.cache_creation_input_tokens),
    output: tokenCount(usage.output_tokens),
  };
}

/**
 * Anthropic's `input_tokens` excludes cache reads and writes, while Keyport's `inputTokens`
 * counts every input token (see `src/lib/usage.ts`), so the three are added up.
 * @see https://docs.claude.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
 */
function toUsage(fields: UsageFields): Usage {
  return {
    inputTokens: fields.input === undefined ? undefined : fields.input + (fields.cacheRead ?? 0) + (fields.cacheWrite ?? 0),
    outputTokens: fields.output,
    cachedInputTokens: fields.cacheRead,
    cacheWriteTokens: fields.cacheWrite,
  };
}

/** Anthropic streams are never filtered: they carry no event Keyport added. */
export function createAnthropicStreamObserver(): StreamObserver {
  return createSseObserver(createAnthropicInspector(), { isFiltering: false });
}

/** What the inspector reads of `message_start` (the message) and of `message_delta` (its usage). */
const START_EVENT_FIELDS = [fieldName("message")];
const DELTA_EVENT_FIELDS = [fieldName("usage")];

/**
 * `message_start` carries the input side (and an initial `output_tokens`); each `message_delta`
 * carries CUMULATIVE counts, so the latest replaces the earlier ones and nothing is summed. A
 * stream cut off midway therefore reports the input plus the output counted so far. Only these
 * two events are parsed; every other event is recognised by its name alone.
 * @see https://docs.claude.com/en/docs/build-with-claude/streaming#event-types
 */
function createAnthropicInspector(): SseInspector {
  let fields: UsageFields = { input: undefined, cacheRead: undefined, cacheWrite: undefined, output: undefined };
  let model: string | undefined;
  let sawError = false;
  let outputDeltas = 0;
  return {
    inspect(event) {
      const name = readSseEventName(event);
      if (name === "error") sawError = true;
      if (name === "content_block_delta") outputDeltas += 1;
      if (name !== "message_start" && name !== "message_delta") return "keep";
      const json = readEventFields(event, name === "message_start" ? START_EVENT_FIELDS : DELTA_EVENT_FIELDS);
      if (json === undefined) return "keep";
      const holder = name === "message_start" ? json.message : json;
      if (!isRecord(holder)) return "keep";
      if (name === "message_start") model = stringField(holder, "model") ?? model;
      if (isRecord(holder.usage)) {
        const next = readUsageFields(holder.usage);
        fields = {
          input: next.input ?? fields.input,
          cacheRead: next.cacheRead ?? fields.cacheRead,
          cacheWrite: next.cacheWrite ?? fields.cacheWrite,
          output: next.output ?? fields.output,
        };
      }
      return "keep";
    },
    usage: () => toUsage(fields),
    model: () => model,
    sawError: () => sawError,
    outputDeltas: () => outputDeltas,
  };
}
