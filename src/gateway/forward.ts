import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher } from "undici";
import type { FailureKind, GatewayAdapter } from "../providers/gateway-spec.js";
import type { Cancellation } from "./cancellation.js";
import { retryDelayMs, type RetryPolicy } from "./retry-policy.js";
import { callUpstream, readBody, UpstreamFailure, type UpstreamRequest, type UpstreamResponse, type UpstreamTimeouts } from "./upstream.js";

/** The upstream's final answer after retries: a response to stream, or an error answer read whole. */
export type ForwardOutcome =
  | { kind: "response"; response: UpstreamResponse }
  | { kind: "error"; status: number; headers: UpstreamResponse["headers"]; body: Buffer; failure: FailureKind };

export type ForwardDeps = {
  dispatcher: Dispatcher;
  retryPolicy: RetryPolicy;
  timeouts: UpstreamTimeouts;
};

/**
 * Sends the request, retrying 429s (not quota), 5xx and connection failures with exponential
 * backoff and jitter, honouring `retry-after` up to a cap. Nothing has been sent to the client
 * yet, so retrying is invisible to it. Throws `UpstreamFailure` when no answer came at all.
 */
export async function forwardWithRetries(
  { dispatcher, retryPolicy, timeouts }: ForwardDeps,
  adapter: Pick<GatewayAdapter, "classifyFailure">,
  request: UpstreamRequest,
  onAttempt: () => void,
): Promise<ForwardOutcome> {
  for (let retry = 0; ; retry += 1) {
    const canRetry = retry < retryPolicy.maxRetries;
    let response: UpstreamResponse;
    try {
      onAttempt();
      response = await callUpstream(dispatcher, request, timeouts);
    } catch (error) {
      if (!(error instanceof UpstreamFailure) || error.kind === "aborted" || !canRetry) throw error;
      await pause(retryDelayMs(retryPolicy, retry, undefined) ?? 0, request.cancellation);
      continue;
    }
    if (response.status < 400) return { kind: "response", response };

    const body = await readBody(response.body).catch(() => Buffer.alloc(0));
    const failure = adapter.classifyFailure(response.status, body);
    const outcome: ForwardOutcome = { kind: "error", status: response.status, headers: response.headers, body, failure };
    if (failure !== "retryable" || !canRetry) return outcome;
    const retryAfter = response.headers["retry-after"];
    const delay = retryDelayMs(retryPolicy, retry, typeof retryAfter === "string" ? retryAfter : undefined);
    if (delay === undefined) return outcome;
    await pause(delay, request.cancellation);
  }
}

async function pause(ms: number, cancellation: Cancellation): Promise<void> {
  // Retries are rare: an AbortController for the sleep is made only here.
  const controller = new AbortController();
  const unsubscribe = cancellation.onAbort(() => controller.abort());
  try {
    await sleep(ms, undefined, { signal: controller.signal });
  } catch {
    throw new UpstreamFailure("aborted");
  } finally {
    unsubscribe();
  }
}
