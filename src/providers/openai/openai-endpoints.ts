import { AppError } from "../../lib/errors.js";
import { isNestedDeeperThan, isRecord, NO_BODY, noUsageAnswer, plainStreamObserver, prepareJsonBody, readJsonRequestBody } from "../gateway-common.js";
import { appendTopLevelField, replaceTopLevelField } from "../json-fields.js";
import type { GatewayEndpoint, PreparedRequest } from "../spec.js";
import { createOpenAiStreamObserver, openAiUsageFromResponse } from "./openai-usage.js";

/**
 * The OpenAI endpoints Keyport serves: the one place to add one. Paths are under the base URL,
 * which already ends in `/v1` (`https://api.openai.com/v1`); OpenAI defines no query parameters
 * for any of them. Routes are Keyport's own: under `/openai/v1`, plus the aliases of tools that
 * assume one OpenAI-style root.
 * @see https://platform.openai.com/docs/api-reference
 */
export const OPENAI_ENDPOINTS: readonly GatewayEndpoint[] = Object.freeze([
  {
    name: "chat.completions",
    method: "POST",
    routes: ["/openai/v1/chat/completions", "/v1/chat/completions"],
    upstreamPath: "/chat/completions",
    query: [],
    isBilled: true,
    prepare: prepareChatCompletion,
    usageFromResponse: (body) => openAiUsageFromResponse("chat", body),
    createStreamObserver: (options) => createOpenAiStreamObserver("chat", options),
  },
  {
    name: "embeddings",
    method: "POST",
    routes: ["/openai/v1/embeddings", "/v1/embeddings"],
    upstreamPath: "/embeddings",
    query: [],
    isBilled: true,
    // Embeddings never stream; a stray `stream: true` must not make the gateway expect events.
    prepare: (body) => prepareJsonBody(body, { canStream: false }),
    usageFromResponse: (body) => openAiUsageFromResponse("chat", body),
    createStreamObserver: plainStreamObserver,
  },
  {
    name: "responses",
    method: "POST",
    routes: ["/openai/v1/responses", "/v1/responses"],
    upstreamPath: "/responses",
    query: [],
    isBilled: true,
    prepare: (body) => prepareJsonBody(body, { canStream: true }),
    usageFromResponse: (body) => openAiUsageFromResponse("responses", body),
    createStreamObserver: (options) => createOpenAiStreamObserver("responses", options),
  },
  {
    name: "models",
    method: "GET",
    routes: ["/openai/v1/models", "/v1/models"],
    upstreamPath: "/models",
    query: [],
    isBilled: false,
    prepare: () => NO_BODY,
    usageFromResponse: noUsageAnswer,
    createStreamObserver: plainStreamObserver,
  },
] satisfies GatewayEndpoint[]);


/** As `prepareJsonBody`, except for a stream that did not ask for usage (see {@link withStreamUsage}). */
function prepareChatCompletion(body: Buffer | undefined): PreparedRequest | AppError {
  const request = readJsonRequestBody(body);
  if (request instanceof AppError) return request;
  if (request.stream && body !== undefined) {
    const changed = withStreamUsage(request.fields, body);
    if (changed instanceof AppError) return changed;
    if (changed !== undefined) return { model: request.model, stream: true, body: changed, hideUsageChunk: true };
  }
  return { model: request.model, stream: request.stream, body, hideUsageChunk: false };
}

/** Deeper `stream_options` values are refused rather than re-serialised. */
const MAX_STREAM_OPTIONS_DEPTH = 32;

/**
 * OpenAI reports a stream's usage only when asked (`stream_options.include_usage`), in one extra
 * chunk with empty `choices` before `[DONE]`. Keyport needs that usage to bill and settle the
 * budget, so it asks on the client's behalf; the client did not ask, so the observer removes the
 * extra chunk again (`hideUsageChunk`). Other `stream_options` fields are kept. Returns the new
 * body, or `undefined` when the client already asked (or sent a `stream_options` OpenAI will
 * refuse anyway: forwarded as it is, OpenAI explains the mistake).
 *
 * What the client still sees of it: `"usage": null` on every other chunk, which the SDK types
 * allow. Usually the client sent no `stream_options`, and the field is added after the body's
 * last member; otherwise only the `stream_options` value is rewritten. Either way every other byte
 * stays as the client wrote it.
 */
function withStreamUsage(fields: Record<string, unknown>, body: Buffer): Buffer | AppError | undefined {
  const streamOptions = fields.stream_options;
  if (!Object.hasOwn(fields, "stream_options")) {
    const appended = appendTopLevelField(body, "stream_options", { include_usage: true });
    if (appended !== undefined) return appended;
  }
  if (isRecord(streamOptions) && streamOptions.include_usage === true) return undefined;
  if (streamOptions !== undefined && streamOptions !== null && !isRecord(streamOptions)) return undefined;
  // Re-serialising a value nested thousands of levels deep would overflow the stack; OpenAI's
  // `stream_options` is a flat object, so such a value can only be a mistake or an attack.
  if (isRecord(streamOptions) && isNestedDeeperThan(streamOptions, MAX_STREAM_OPTIONS_DEPTH)) {
    return new AppError(
      "invalid_request",
      `stream_options is nested too deeply (more than ${MAX_STREAM_OPTIONS_DEPTH} levels): send a flat object such as {"include_usage": true}.`,
    );
  }
  const merged = { ...(isRecord(streamOptions) ? streamOptions : {}), include_usage: true };
  return replaceTopLevelField(body, "stream_options", merged);
}
