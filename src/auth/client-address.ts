import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { TrustProxy } from "../config/config-schema.js";
import { unmapIPv4 } from "../lib/ip-address.js";

/** Whether the hop at `address` is a trusted proxy. */
export type ProxyTrust = (address: string) => boolean;

/** What the HTTP layer knows about where a request came from. */
export type ClientConnection = {
  /** The connection's peer (the nearest proxy when there is one). */
  remoteAddress: string | undefined;
  /** Request headers as Node's HTTP layer hands them over (only `x-forwarded-for` is read). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
};

/**
 * The trust rule `KEYPORT_TRUST_PROXY` describes, in the shape Fastify's `trustProxy` option takes,
 * so the management API's `request.ip` and `clientAddressOf` agree on every request.
 */
export function createProxyTrust(setting: TrustProxy): ProxyTrust {
  if (setting === false) return () => false;
  if (setting === true) return () => true;
  const trusted = new BlockList();
  for (const range of setting) {
    const [address = "", prefix] = range.split("/");
    const type = isIPv4(address) ? "ipv4" : "ipv6";
    if (prefix === undefined) trusted.addAddress(address, type);
    else trusted.addSubnet(address, Number(prefix), type);
  }
  return (address) => {
    const plain = unmapIPv4(address);
    if (isIPv4(plain)) return trusted.check(plain, "ipv4");
    return isIPv6(plain) && trusted.check(plain, "ipv6");
  };
}

/**
 * The client's address: walking from the connection outwards through `X-Forwarded-For` (nearest
 * hop first), the first address that is not a trusted proxy; when every hop is trusted, the
 * farthest one. The same walk as Fastify's (proxy-addr), so both sides of Keyport name one
 * client the same way. Without trusted proxies the header is ignored: a client cannot choose
 * its own address.
 */
export function clientAddressOf(connection: ClientConnection, trust: ProxyTrust): string {
  const socketAddress = unmapIPv4(connection.remoteAddress ?? "");
  if (!trust(socketAddress)) return socketAddress;
  const header = connection.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  let address = socketAddress;
  for (let next = forwarded.pop(); next !== undefined; next = forwarded.pop()) {
    address = unmapIPv4(next);
    if (!trust(address)) return address;
  }
  return address;
}
