import type { IncomingHttpHeaders } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { Cancellation } from "../../lib/cancellation.js";
import type { MetricsPort } from "../../lib/metrics-port.js";
import type { ProviderError, ProviderErrorKind } from "../../providers/spec.js";
import {
  readBody,
  UpstreamFailure,
  type UpstreamFailureKind,
  type UpstreamRequest,
  type UpstreamResponse,
  type UpstreamTimeouts,
} from "../../providers/upstream-client.js";
import type { CallContext, Credential } from "../call-context.js";
import { retryDelayMs, type RetryPolicy } from "./retry-policy.js";
import { upstreamRequestHeaders } from "./upstream-headers.js";

/**
 * The provider's final answer after retries: a response to relay, an error answer read whole (and
 * classified), or no answer at all. `wentUpstream`: some attempt reached the provider (was written
 * to a connected socket), so the call may be billed and is recorded.
 */
export type ForwardResult =
  | { kind: "response"; response: UpstreamResponse; wentUpstream: true }
  | { kind: "error"; status: number; headers: IncomingHttpHeaders; body: Buffer; error: ProviderError; wentUpstream: true }
  | { kind: "failed"; failure: UpstreamFailureKind; wentUpstream: boolean };

export type ForwardDeps = {
  retryPolicy: RetryPolicy;
  timeouts: UpstreamTimeouts;
  /** Beta values (or beta header names) callers may use with the platform key. */
  platformBetas: ReadonlySet<string>;
  /** Told about every retry (default: counts nothing). */
  metrics?: Pick<MetricsPort, "upstreamRetried">;
};

/** What the gateway does with each kind of error answer: retry it, or pass it on (after marking the key). */
const RETRIED: ReadonlySet<ProviderErrorKind> = new Set(["rate_limited", "unavailable"]);

/**
 * Sends the call upstream with `credential` through the provider's client, retrying rate limits
 * (not an exhausted quota), provider failures and connection failures with exponential backoff
 * and jitter, honouring `retry-after` up to a cap. Nothing has reached the client yet, so
 * retrying is invisible to it. Never throws for what the provider (or the network) did.
 */
export async function forward(call: Readonly<CallContext>, credential: Credential, deps: ForwardDeps): Promise<ForwardResult> {
  const request = upstreamRequest(call, credential, deps);
  const { adapter, cancellation } = call;
  let wentUpstream = false;
  for (let retry = 0; ; retry += 1) {
    const canRetry = retry < deps.retryPolicy.maxRetries;
    let response: UpstreamResponse;
    try {
      response = await adapter.upstream.send(request);
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      wentUpstream ||= error.wasSent;
      if (error.kind === "aborted" || !canRetry || !(await pause(retryDelayMs(deps.retryPolicy, retry, undefined) ?? 0, cancellation))) {
        return { kind: "failed", failure: cancellation.aborted ? "aborted" : error.kind, wentUpstream };
      }
      deps.metrics?.upstreamRetried(adapter.id, error.kind === "timeout" ? "timeout" : "connection");
      continue;
    }
    if (response.status < 400) return { kind: "response", response, wentUpstream: true };

    const body = await readBody(response.body);
    const error = adapter.classifyError(response.status, body);
    const answer = { kind: "error", status: response.status, headers: response.headers, body, error, wentUpstream: true } as const;
    if (!RETRIED.has(error.kind) || !canRetry) return answer;
    const retryAfter = response.headers["retry-after"];
    const delay = retryDelayMs(deps.retryPolicy, retry, typeof retryAfter === "string" ? retryAfter : undefined);
    if (delay === undefined) return answer;
    if (!(await pause(delay, cancellation))) return { kind: "failed", failure: "aborted", wentUpstream: true };
    deps.metrics?.upstreamRetried(adapter.id, error.kind === "rate_limited" ? "rate_limited" : "unavailable");
  }
}

/** The request for every attempt of this call with this key: path with the allowed query, headers, body. */
function upstreamRequest(call: Readonly<CallContext>, credential: Credential, deps: ForwardDeps): UpstreamRequest {
  const { adapter, endpoint, request, prepared } = call;
  const body = prepared?.body;
  return {
    method: endpoint.method,
    path: `${endpoint.upstreamPath}${allowedQuery(request.url, endpoint.query)}`,
    headers: upstreamRequestHeaders(request.headers, adapter.requestHeaders, {
      source: credential.source,
      platformBetas: deps.platformBetas,
      auth: adapter.authHeaders(credential.apiKey),
      hasBody: body !== undefined,
    }),
    body,
    cancellation: call.cancellation,
    timeouts: deps.timeouts,
  };
}

/**
 * The query string of `url` reduced to the parameters the endpoint defines, in their order,
 * re-encoded; `""` when none is left. Anything else the client put in its URL (a `?token=` holding
 * its Keyport token, say) stays here.
 */
export function allowedQuery(url: string, allowed: readonly string[]): string {
  const start = url.indexOf("?");
  if (start === -1 || allowed.length === 0) return "";
  const kept = new URLSearchParams();
  for (const [name, value] of new URLSearchParams(url.slice(start + 1))) {
    if (allowed.includes(name)) kept.append(name, value);
  }
  const text = kept.toString();
  return text === "" ? "" : `?${text}`;
}

/** Waits before a retry; false when the client went away meanwhile. */
async function pause(ms: number, cancellation: Cancellation): Promise<boolean> {
  // Retries are rare: an AbortController for the sleep is made only here.
  const controller = new AbortController();
  const unsubscribe = cancellation.onAbort(() => controller.abort());
  try {
    await sleep(ms, undefined, { signal: controller.signal });
    return true;
  } catch {
    return false;
  } finally {
    unsubscribe();
  }
}
