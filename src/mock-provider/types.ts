/**
 * How the mock treats a key. `invalid` (and every unknown key unless `acceptUnknownKeys`) answers
 * with the provider's real 401; `no_credits` and `rate_limited` answer as an exhausted or
 * throttled account would.
 */
export type MockKeyBehaviour = "valid" | "invalid" | "no_credits" | "rate_limited";

export const MOCK_KEY_BEHAVIOURS: readonly MockKeyBehaviour[] = ["valid", "invalid", "no_credits", "rate_limited"];

export type MockProviderOptions = {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; `0` picks a free one. Default `0`. */
  port?: number;
  /** Delay before every response (before the first event of a stream), in milliseconds. Default `0`. */
  latencyMs?: number;
  /** Initial key behaviours. */
  keys?: Record<string, MockKeyBehaviour>;
  /** Treat keys not listed in `keys` as valid. Default `false` (unknown keys get a 401). */
  acceptUnknownKeys?: boolean;
  /**
   * How many recent requests `requests()` keeps; older ones are dropped so a long benchmark does
   * not grow memory. `0` turns recording off. Default `1000`.
   */
  recordLimit?: number;
};

/** Which requests a fault applies to; every given field must match exactly. */
export type MockFaultMatch = {
  /** Request path without the query string, e.g. `/v1/chat/completions`. */
  path?: string;
  /** The key the request carried (`Authorization: Bearer` or `x-api-key`). */
  key?: string;
};

type MockFaultCommon = {
  match?: MockFaultMatch;
  /** How many matching requests the fault hits before it is used up. Default `1`. */
  times?: number;
};

/**
 * A one-off misbehaviour, consumed by the next matching requests before the key behaviour applies.
 * - `status`: answer with this status; `body` defaults to the provider's error body for it.
 * - `reset-mid-stream`: send `afterEvents` SSE events, then reset the connection. Only streaming
 *   requests match it; other requests neither trigger nor consume it.
 * - `delay`: wait `ms` before answering normally (for timeouts).
 * - `reset`: reset the connection before any response.
 * - `alter`: answer as usual, with extra response `headers` and/or the body compressed with
 *   `contentEncoding` (a stream event by event, flushed as it goes), the way a provider or a proxy
 *   in between might answer despite `accept-encoding: identity`.
 */
export type MockFault = MockFaultCommon &
  (
    | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
    | { kind: "reset-mid-stream"; afterEvents: number }
    | { kind: "delay"; ms: number }
    | { kind: "reset" }
    | { kind: "alter"; headers?: Record<string, string>; contentEncoding?: MockContentEncoding }
  );

export type MockContentEncoding = "gzip" | "deflate" | "br";

/** One request as the mock saw it (control API calls under `/__mock/` are not recorded). */
export type RecordedRequest = {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string including `?`, or `""`. */
  search: string;
  /** Lower-case names, repeated headers joined with `, `; includes the auth header as sent. */
  headers: Record<string, string>;
  /** Parsed JSON body; the raw text when it was not JSON; `undefined` when empty. */
  body: unknown;
};

export type MockProvider = {
  /** `http://host:port`, no trailing slash. */
  url: string;
  /** `url + "/v1"`: what `OPENAI_BASE_URL` should be. */
  openaiBaseUrl: string;
  /** `url`: what `ANTHROPIC_BASE_URL` should be. */
  anthropicBaseUrl: string;
  setKey(key: string, behaviour: MockKeyBehaviour): void;
  injectFault(fault: MockFault): void;
  clearFaults(): void;
  requests(): RecordedRequest[];
  clearRequests(): void;
  /** Stops listening, cuts open connections and cancels pending delays. */
  close(): Promise<void>;
};
