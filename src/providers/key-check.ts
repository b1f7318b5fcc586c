// The plumbing every adapter's key check shares: one request through the provider's upstream
// client with a hard deadline, and the reading of an answer through the adapter's one
// `classifyError`. Only what a provider says differently (its name, its billing advice, the
// requests it needs) stays in the adapter.
import { createCancellation } from "../lib/cancellation.js";
import type { KeyCheckResult } from "../lib/domain.js";
import { scrubAndTrim, scrubSecretFragments, scrubSecrets } from "../lib/scrub.js";
import type { KeyCheck, ProviderError } from "./spec.js";
import { readBody, type UpstreamClient, UpstreamFailure } from "./upstream-client.js";

/** The provider's answer to a key-check request: status and (decoded, capped) body. */
export type CheckAnswer = { status: number; body: Buffer };

/**
 * The request produced no answer. Deliberately carries no error text: HTTP client errors can
 * quote header values, and the `Authorization`/`x-api-key` header value is the key.
 */
export type CheckFailure = { networkError: "timeout" | "connection" };

export function isCheckFailure(result: CheckAnswer | CheckFailure): result is CheckFailure {
  return "networkError" in result;
}

/** Key-check answers larger than this are cut; they only need classifying. */
const MAX_CHECK_BODY_BYTES = 1024 * 1024;

/**
 * Sends one key-check request through the provider's client. Never throws. `timeoutMs` covers the
 * whole exchange (connect, headers and body); a caller's abort counts as a timeout (the caller
 * gave up waiting); refused connections, resets and bad input are `connection`.
 */
export async function askProvider(
  client: UpstreamClient,
  request: { method: "GET" | "POST"; path: string; headers: Record<string, string>; json?: unknown; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<CheckAnswer | CheckFailure> {
  const cancellation = createCancellation();
  const stop = () => cancellation.abort();
  const deadline = setTimeout(stop, Math.max(0, request.timeoutMs));
  request.signal?.addEventListener("abort", stop);
  if (request.signal?.aborted === true) stop();
  try {
    const hasBody = request.json !== undefined;
    const response = await client.send({
      method: request.method,
      path: request.path,
      headers: hasBody ? { "content-type": "application/json", ...request.headers } : request.headers,
      body: hasBody ? Buffer.from(JSON.stringify(request.json)) : undefined,
      cancellation,
      timeouts: { headersTimeoutMs: request.timeoutMs, bodyTimeoutMs: request.timeoutMs },
    });
    const body = await readBody(response.body, MAX_CHECK_BODY_BYTES);
    return cancellation.aborted ? { networkError: "timeout" } : { status: response.status, body };
  } catch (error) {
    const isTimeout = cancellation.aborted || (error instanceof UpstreamFailure && error.kind === "timeout");
    return { networkError: isTimeout ? "timeout" : "connection" };
  } finally {
    clearTimeout(deadline);
    request.signal?.removeEventListener("abort", stop);
  }
}

/** How one provider words the outcomes of a key check. */
export type CheckWording = {
  /** "OpenAI", "Anthropic". */
  name: string;
  /** What to tell the owner of a key whose account has no credit. */
  noCredits: string;
};

/**
 * The key-check outcome of a provider error answer, from the adapter's classification: the one
 * reading the gateway acts on as well. `not_permitted` (a 403, a missing scope) means the provider
 * authenticated the key and refused it this request: the key is `valid`, and the message says
 * what it may not do (docs/decisions.md, "A provider's error answers").
 * @param secrets scrubbed out of the provider's message along with anything key-like
 */
export function checkOfError(wording: CheckWording, status: number, error: ProviderError, secrets: readonly string[]): KeyCheck {
  const said = providerMessage(error, secrets);
  switch (error.kind) {
    case "invalid_key":
      return check("invalid", said ?? `${wording.name} rejected the key.`);
    case "no_credits":
      return check("no_credits", wording.noCredits);
    case "rate_limited":
      return check("rate_limited", `${wording.name} is rate-limiting this key right now. Try again in a moment.`);
    case "unavailable":
      return check("unreachable", `${wording.name} had a server error or was overloaded (HTTP ${status}). Try again later.`);
    case "not_permitted":
      return check("valid", `${wording.name} accepted the key, but it is not allowed to make this request${said === undefined ? "" : `: ${said}`}`);
    case "refused":
      return check("unreachable", `${wording.name} gave an unexpected answer (HTTP ${status}); the key could not be checked.`);
  }
}

/** A short, key-free sentence for a request that got no answer. */
export function describeNetworkFailure(providerName: string, failure: CheckFailure, timeoutMs: number): string {
  return failure.networkError === "timeout"
    ? `${providerName} did not answer within ${timeoutMs} ms. Try again later.`
    : `Could not connect to ${providerName}. Try again later.`;
}

/** The provider's own wording, with every piece of the key (and anything key-like) removed. */
export function providerMessage(error: ProviderError, secrets: readonly string[]): string | undefined {
  if (error.message === undefined || error.message.trim() === "") return undefined;
  return scrubAndTrim(scrubSecrets(scrubSecretFragments(error.message, secrets), secrets));
}

export function check(result: KeyCheckResult, message: string): KeyCheck {
  return { result, message };
}
