import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** RFC 9110 §7.6.1 hop-by-hop headers, plus ones a proxy must not relay as they are. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Upstream response headers we do not relay: hop-by-hop ones; `set-cookie` (cookies of the
 * provider's domain mean nothing to our clients); the provider's `x-request-id`, which would clash
 * with ours (it is relayed as `x-upstream-request-id`).
 */
const NOT_RELAYED = new Set([...HOP_BY_HOP, "set-cookie", "x-request-id", "content-encoding"]);

/** Response headers for the client: the provider's, filtered, then ours on top. */
export function relayedResponseHeaders(
  upstream: IncomingHttpHeaders,
  options: { dropContentLength: boolean },
  ours: Record<string, string>,
): OutgoingHttpHeaders {
  const listedInConnection = connectionTokens(upstream.connection);
  const headers: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || NOT_RELAYED.has(name) || listedInConnection.has(name)) continue;
    if (options.dropContentLength && name === "content-length") continue;
    headers[name] = value;
  }
  const upstreamRequestId = upstream["x-request-id"];
  if (typeof upstreamRequestId === "string") headers["x-upstream-request-id"] = upstreamRequestId;
  return Object.assign(headers, ours);
}

/**
 * Request headers for the provider: only what it needs. The client's credentials (our JWT) are
 * never forwarded; the adapter adds the provider key in the provider's own scheme.
 */
export function upstreamRequestHeaders(
  client: IncomingHttpHeaders,
  forwardedNames: readonly string[],
  auth: Record<string, string>,
  hasBody: boolean,
): Record<string, string> {
  const headers: Record<string, string> = {
    accept: typeof client.accept === "string" ? client.accept : "application/json",
    // Usage is read from the body on its way through, so it must arrive uncompressed.
    "accept-encoding": "identity",
  };
  if (hasBody) headers["content-type"] = "application/json";
  const userAgent = client["user-agent"];
  if (typeof userAgent === "string") headers["user-agent"] = userAgent;
  for (const name of forwardedNames) {
    const value = client[name];
    if (typeof value === "string") headers[name] = value;
  }
  return Object.assign(headers, auth);
}

const NO_TOKENS: ReadonlySet<string> = new Set();

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  // The usual values name no other header: no Set to build on every call.
  if (value === undefined || value === "keep-alive" || value === "close") return NO_TOKENS;
  const text = Array.isArray(value) ? value.join(",") : value;
  return new Set(text.split(",").map((token) => token.trim().toLowerCase()).filter((token) => token !== ""));
}
