import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import { checkResolvedAddresses } from "./webhook-url-policy.js";

/** A connection refused because its host resolved to a non-public address. */
export class UnsafeAddressError extends Error {
  readonly code = "KEYPORT_UNSAFE_ADDRESS";

  constructor(message: string) {
    super(message);
    this.name = "UnsafeAddressError";
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The `lookup` option of `net.connect` / `tls.connect`, as undici passes it through. */
export type ConnectLookup = (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback) => void;

export type ResolveAll = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolveAll: ResolveAll = (hostname, callback) => {
  const options: LookupAllOptions = { all: true, verbatim: true };
  dnsLookup(hostname, options, callback);
};

/**
 * A DNS lookup for outgoing webhook connections that refuses non-public answers. It is the
 * lookup the socket itself uses, so the address judged is the address connected to: a name that
 * answers "public" to a check and "private" a moment later (DNS rebinding) cannot slip through,
 * because there is no second lookup. IP-literal hosts never reach a lookup and are judged by
 * `checkWebhookUrlSyntax` before the request.
 */
export function createSafeLookup(resolveAll: ResolveAll = systemResolveAll): ConnectLookup {
  return (hostname, options, callback) => {
    resolveAll(hostname, (error, addresses) => {
      if (error !== null) {
        callback(error, []);
        return;
      }
      const family = options.family === 4 || options.family === 6 ? options.family : undefined;
      const usable = family === undefined ? addresses : addresses.filter((entry) => entry.family === family);
      if (usable.length === 0) {
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), []);
        return;
      }
      const judged = checkResolvedAddresses(hostname, usable);
      if (!judged.ok) {
        callback(new UnsafeAddressError(`refused: ${judged.detail}; webhooks go to public addresses only`), []);
        return;
      }
      const first = usable[0] as LookupAddress;
      if (options.all === true) callback(null, usable);
      else callback(null, first.address, first.family);
    });
  };
}
