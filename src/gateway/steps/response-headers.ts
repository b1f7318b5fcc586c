import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { ResponseHeaderRules } from "../../providers/spec.js";
import type { KeySource } from "./upstream-headers.js";

/**
 * Provider response headers relayed for every provider. `content-encoding` is only ever present
 * when the upstream client could not decode the body (it removes it when it does); `retry-after`
 * and `x-should-retry` tell the SDKs when (and whether) to retry an error answer.
 */
const RELAYED: ReadonlySet<string> = new Set(["content-type", "content-encoding", "retry-after", "x-should-retry"]);

/**
 * Response headers for the client: an allow-list of the provider's, then ours on top. Anything
 * else the provider (or a proxy in between) sends stays here: account and organization ids,
 * cookies, a header that echoes the key. The provider's rate-limit headers describe the account
 * of the key used, so they are relayed with the owner's own key only.
 * @param keepContentLength false when the body will be changed or streamed
 */
export function relayedResponseHeaders(
  upstream: IncomingHttpHeaders,
  rules: ResponseHeaderRules,
  call: { source: KeySource; keepContentLength: boolean },
  ours: Record<string, string>,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value !== undefined && isRelayed(name, rules, call)) headers[name] = value;
  }
  const upstreamRequestId = upstream[rules.requestId];
  if (typeof upstreamRequestId === "string") headers["x-upstream-request-id"] = upstreamRequestId;
  return Object.assign(headers, ours);
}

function isRelayed(name: string, rules: ResponseHeaderRules, call: { source: KeySource; keepContentLength: boolean }): boolean {
  if (RELAYED.has(name) || rules.relayed.includes(name)) return true;
  if (name === "content-length") return call.keepContentLength;
  return call.source === "byok" && rules.rateLimitPrefixes.some((prefix) => name.startsWith(prefix));
}
