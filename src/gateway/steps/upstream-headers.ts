import type { IncomingHttpHeaders } from "node:http";
import type { RequestHeaderRules } from "../../providers/spec.js";

/** Which kind of key a request goes upstream with; decides what the client may steer. */
export type KeySource = "byok" | "platform";

/**
 * Request headers for the provider: only what it needs, by the adapter's rules. The client's
 * credentials (our JWT) are never forwarded. With the owner's own key the client's account and
 * beta headers go as sent (the owner's account pays); with the platform key the operator's
 * account headers replace the client's, and only the betas the operator listed pass.
 */
export function upstreamRequestHeaders(
  client: IncomingHttpHeaders,
  rules: RequestHeaderRules,
  call: { source: KeySource; platformBetas: ReadonlySet<string>; auth: Record<string, string>; hasBody: boolean },
): Record<string, string> {
  const headers: Record<string, string> = {
    accept: typeof client.accept === "string" ? client.accept : "application/json",
    // Usage is read from the body on its way through; a compressed answer is decoded anyway.
    "accept-encoding": "identity",
  };
  if (call.hasBody) headers["content-type"] = "application/json";
  const userAgent = client["user-agent"];
  if (typeof userAgent === "string") headers["user-agent"] = userAgent;
  copyHeaders(client, rules.passed, headers);
  if (call.source === "byok") {
    copyHeaders(client, rules.account, headers);
    copyHeaders(client, rules.beta, headers);
  } else {
    Object.assign(headers, rules.platformAccount);
    for (const name of rules.beta) {
      const allowed = allowedBetas(client[name], name, call.platformBetas);
      if (allowed !== undefined) headers[name] = allowed;
    }
  }
  return Object.assign(headers, call.auth);
}

function copyHeaders(client: IncomingHttpHeaders, names: readonly string[], into: Record<string, string>): void {
  for (const name of names) {
    const value = client[name];
    if (typeof value === "string") into[name] = value;
  }
}

/**
 * The comma-separated beta values of one header that the operator allows on the platform key
 * (the header's own name in the list allows all of them); `undefined` when none is left.
 */
function allowedBetas(value: string | string[] | undefined, name: string, allowed: ReadonlySet<string>): string | undefined {
  if (typeof value !== "string") return undefined;
  if (allowed.has(name)) return value;
  const kept = value
    .split(",")
    .map((beta) => beta.trim())
    .filter((beta) => beta !== "" && allowed.has(beta));
  return kept.length === 0 ? undefined : kept.join(",");
}
