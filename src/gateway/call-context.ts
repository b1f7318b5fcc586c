import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Principal } from "../auth/principal.js";
import { type Cancellation, createCancellation } from "../lib/cancellation.js";
import type { Redacted } from "../lib/redacted.js";
import type { ErrorCode } from "../lib/errors.js";
import type { Usage } from "../lib/usage.js";
import type { GatewayEndpoint, PreparedRequest, ProviderAdapter } from "../providers/spec.js";
import type { ProviderKeyRow, UsageStatus } from "../store/ports.js";
import type { JournalTicket } from "../usage/usage-journal.js";
import type { GatewayRequest } from "./gateway-request.js";
import type { BudgetReservation } from "./steps/budget.js";

/** Why the platform key serves a call. */
export type PlatformReason = "no_own_key" | "byok_not_allowed" | "own_key_unusable" | "own_key_failed";

/** The key an attempt goes upstream with: the owner's own, or the platform's (and why). */
export type Credential =
  | { source: "byok"; keyId: string; row: ProviderKeyRow; apiKey: Redacted<string> }
  | { source: "platform"; keyId: null; reason: PlatformReason; apiKey: Redacted<string> };

/** How the call ended for the client: what the usage record says. */
export type CallOutcome = {
  status: UsageStatus;
  /** The status the client got (0 when nothing was sent). */
  httpStatus: number;
  usage: Usage;
  /** The model the provider reported, when it said. */
  reportedModel: string | undefined;
  streamed: boolean;
  /** `performance.now()` when the first byte went to the client; `null` when none did. */
  firstByteAtMs: number | null;
  /** Keyport's own error code when Keyport answered instead of the provider (a refusal, no answer upstream). */
  errorCode?: ErrorCode;
};

/**
 * Everything about one gateway call, from its arrival to its record. The top part is fixed when
 * the call arrives; the rest is what each step found, filled in order by `pipeline.ts` (the only
 * writer): steps read the context and return what they found. At the end it holds everything a
 * recorder needs: the usage record, a budget settlement, metrics and an access log line are all
 * made from it (`steps/record.ts`).
 */
export type CallContext = {
  readonly request: GatewayRequest;
  readonly response: ServerResponse;
  readonly adapter: ProviderAdapter;
  readonly endpoint: GatewayEndpoint;
  /** Set when the client goes away before its answer is complete. */
  readonly cancellation: Cancellation;
  /** `performance.now()` at arrival, for latency and time to first byte. */
  readonly startedAtMs: number;
  readonly createdAt: Date;

  /** authenticate: the verified caller. */
  principal: Principal | undefined;
  /** read: model, stream, and the body to send upstream. */
  prepared: PreparedRequest | undefined;
  /** select (and fall back): the key the next attempt uses. */
  credential: Credential | undefined;
  /** limit: Keyport's own `ratelimit-*` headers for a platform call; empty for the owner's key. */
  limitHeaders: Readonly<Record<string, string>>;
  /** budget: what was reserved before forwarding, settled or released at the end. */
  reservation: BudgetReservation | undefined;
  /** Before forwarding: the usage journal's start line (the usage record's id is fixed there). */
  journal: JournalTicket | undefined;
  /** forward: the key of the last attempt that reached the provider; `undefined` when none did (nothing to bill). */
  servedBy: Credential | undefined;
  /** relay (or the failure): how the call ended. */
  outcome: CallOutcome | undefined;
  /**
   * forward: milliseconds spent waiting for the provider's answer (every attempt up to its response
   * headers, the pauses between retries included); the rest of the time to the first byte is Keyport's.
   */
  upstreamMs: number;
};

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A new call, with its cancellation tied to the client's connection: a response closed before it
 * finished means the client went away. Every field is written out (one object shape per call).
 */
export function createCallContext(fields: {
  request: GatewayRequest;
  response: ServerResponse;
  adapter: ProviderAdapter;
  endpoint: GatewayEndpoint;
  createdAt: Date;
}): CallContext {
  const cancellation = createCancellation();
  const { response } = fields;
  response.on("close", () => {
    if (!response.writableFinished) cancellation.abort();
  });
  return {
    request: fields.request,
    response,
    adapter: fields.adapter,
    endpoint: fields.endpoint,
    cancellation,
    startedAtMs: performance.now(),
    createdAt: fields.createdAt,
    principal: undefined,
    prepared: undefined,
    credential: undefined,
    limitHeaders: NO_HEADERS,
    reservation: undefined,
    journal: undefined,
    servedBy: undefined,
    outcome: undefined,
    upstreamMs: 0,
  };
}
