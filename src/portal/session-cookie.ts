import type { PortalConfig } from "../config/portal-config.js";

/**
 * The portal session cookie. HttpOnly (page scripts never see the session), `Path=/` (the page
 * and `/api/v1` share it), `SameSite=Strict` unless framing is allowed, in which case the page
 * lives in another site's frame and needs `SameSite=None; Secure; Partitioned` (CHIPS: the
 * cookie is kept per embedding site, which is what browsers blocking third-party cookies allow).
 * Secure cookies take the `__Host-` prefix: no Domain, Path=/, Secure, enforced by the browser.
 */
export type SessionCookie = {
  readonly name: string;
  serialize(value: string, maxAgeSeconds: number): string;
  /** A Set-Cookie that removes the cookie. */
  clear(): string;
  read(cookieHeader: string | undefined): string | undefined;
};

export function createSessionCookie(config: Pick<PortalConfig, "secureCookie" | "frameAncestors">): SessionCookie {
  const name = config.secureCookie ? "__Host-keyport_session" : "keyport_session";
  const framed = config.frameAncestors.length > 0;
  const attributes = ["Path=/", "HttpOnly", ...(config.secureCookie ? ["Secure"] : []), framed ? "SameSite=None" : "SameSite=Strict", ...(framed ? ["Partitioned"] : [])];
  return {
    name,
    serialize: (value, maxAgeSeconds) => [`${name}=${value}`, `Max-Age=${maxAgeSeconds}`, ...attributes].join("; "),
    clear: () => [`${name}=`, "Max-Age=0", ...attributes].join("; "),
    read(cookieHeader) {
      if (cookieHeader === undefined) return undefined;
      for (const part of cookieHeader.split(";")) {
        const separator = part.indexOf("=");
        if (separator !== -1 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
      }
      return undefined;
    },
  };
}
