import { performance } from "node:perf_hooks";
import { scrubSecrets } from "../lib/scrub.js";
import type { GatewayLog } from "./gateway-request.js";
import type { CallEndListener } from "./steps/record.js";

/** A model name is the client's text: only this much of it goes into a log line. */
const MAX_LOGGED_MODEL = 128;

/** Milliseconds with two decimals: enough to see Keyport's sub-millisecond share. */
function ms(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * One `info` line per gateway call, written after the answer went out: who (request id, owner),
 * what (provider, endpoint, model, key source), how it ended (HTTP status, outcome, Keyport's
 * error code, tokens) and where the time went (total, to the first byte, the provider's share,
 * Keyport's share). Never a key, a token or a request body: the fields are picked one by one from
 * the call's context, and the key source is a word (`byok`, `platform`). The model is the
 * client's text, so it is scrubbed of anything key-like like every other outside text. The
 * caller passes a logger without path redaction (app.ts): no field here can hold a secret, and
 * redaction cost as much as the rest of the line. One logger for every call, with the request id
 * as a field: a per-call child logger would cost more than the line.
 */
export function createAccessLog(log: Pick<GatewayLog, "info">): CallEndListener {
  return (call, record) => {
    const { outcome } = call;
    const endedAtMs = performance.now();
    const firstByteAtMs = outcome?.firstByteAtMs ?? null;
    const toFirstByteMs = firstByteAtMs === null ? null : firstByteAtMs - call.startedAtMs;
    const model = record?.model ?? call.prepared?.model;
    log.info(
      {
        requestId: call.request.id,
        owner: call.principal?.owner,
        provider: call.adapter.id,
        endpoint: call.endpoint.name,
        // The path the client called (`/openai/v1/chat/completions` or an alias such as `/v1/chat/completions`).
        route: call.request.routePath,
        model: model === undefined || model === "" ? undefined : scrubSecrets(model.slice(0, MAX_LOGGED_MODEL)),
        source: call.servedBy?.source ?? call.credential?.source,
        status: outcome?.httpStatus ?? 0,
        outcome: record === undefined ? "refused" : record.status,
        code: outcome?.errorCode,
        inputTokens: record?.inputTokens ?? undefined,
        outputTokens: record?.outputTokens ?? undefined,
        latencyMs: ms(endedAtMs - call.startedAtMs),
        ttfbMs: toFirstByteMs === null ? undefined : ms(toFirstByteMs),
        upstreamMs: ms(call.upstreamMs),
        addedMs: toFirstByteMs === null ? undefined : ms(Math.max(0, toFirstByteMs - call.upstreamMs)),
      },
      "gateway call",
    );
  };
}
