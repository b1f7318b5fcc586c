import type { PortalConfig } from "../config/portal-config.js";

/**
 * Response headers of every Settings page response (the page, its assets, the link pages). The
 * Content-Security-Policy allows only Keyport's own scripts, styles and API (no inline script or
 * style element, no eval); the page sets its theme colour through the CSSOM, which CSP allows.
 * Framing follows `KEYPORT_FRAME_ANCESTORS`, and is refused entirely without it.
 */
export function pageSecurityHeaders(config: Pick<PortalConfig, "frameAncestors">): Record<string, string> {
  const frameAncestors = config.frameAncestors.length === 0 ? "'none'" : config.frameAncestors.join(" ");
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors}`,
  ].join("; ");
  return {
    "content-security-policy": csp,
    // For browsers that predate frame-ancestors; it cannot list origins, so only when none may frame.
    ...(config.frameAncestors.length === 0 ? { "x-frame-options": "DENY" } : {}),
    "x-content-type-options": "nosniff",
    // The link URL carries its token: it must not leave in a Referer.
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
  };
}
