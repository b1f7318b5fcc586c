import type { z } from "zod";
import type { envSchema } from "./config-schema.js";

/** Portal links (one-time), the sessions they open, and where the Settings page may be shown. */
export type PortalConfig = {
  /**
   * The origin browsers reach Keyport at (`https://keyport.example.com`): portal links are built
   * on it and cookie-authenticated writes must come from it. Unset: the origin of the request
   * itself (fine on one host; set it behind a proxy or when the operator calls Keyport by an
   * internal name).
   */
  publicUrl: string | undefined;
  /** Origins allowed to show the Settings page in a frame (CSP `frame-ancestors`); empty: none. */
  frameAncestors: readonly string[];
  /** How long a portal link can be opened, in seconds. Default 300. */
  linkTtlSeconds: number;
  /** How long the session a link opens lasts, in seconds. Default 3600. */
  sessionTtlSeconds: number;
  /**
   * Whether the session cookie is `Secure`: in production, when the public URL is https, and
   * whenever framing is allowed (`SameSite=None` requires it).
   */
  secureCookie: boolean;
};

/** The operator's words for "your plan does not use your own keys", shown by the page and the gateway. */
export type UpgradeConfig = {
  /** e.g. "Upgrade to Premium to use your own keys." */
  hint: string | undefined;
  url: string | undefined;
};

type EnvValues = z.output<typeof envSchema>;

/** `https://host[:port]`, optionally `https://*.host`: what CSP's frame-ancestors accepts, no more. */
const FRAME_ANCESTOR = /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
/** Printable, single line: the hint is shown in pages and error messages. */
const HINT = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]{1,200}$/;

export function parsePortalConfig(values: EnvValues, nodeEnv: string, problems: string[]): PortalConfig {
  const production = nodeEnv === "production";
  let publicUrl: string | undefined;
  if (values.KEYPORT_PUBLIC_URL !== undefined) {
    const parsed = URL.canParse(values.KEYPORT_PUBLIC_URL) ? new URL(values.KEYPORT_PUBLIC_URL) : undefined;
    if (parsed === undefined || (parsed.protocol !== "https:" && parsed.protocol !== "http:") || parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "" || parsed.username !== "") {
      problems.push("KEYPORT_PUBLIC_URL must be an origin such as https://keyport.example.com (no path)");
    } else if (production && parsed.protocol !== "https:") {
      problems.push("KEYPORT_PUBLIC_URL must be https in production (the session cookie is Secure)");
    } else {
      publicUrl = parsed.origin;
    }
  }

  const frameAncestors: string[] = [];
  for (const entry of (values.KEYPORT_FRAME_ANCESTORS ?? "").split(/[\s,]+/)) {
    if (entry === "") continue;
    const origin = entry.toLowerCase().replace(/\/+$/, "");
    if (!FRAME_ANCESTOR.test(origin)) {
      problems.push(`KEYPORT_FRAME_ANCESTORS: "${entry}" is not an origin like https://app.example.com or https://*.example.com`);
    } else if (production && !origin.startsWith("https://")) {
      problems.push(`KEYPORT_FRAME_ANCESTORS: "${entry}" must be https in production`);
    } else {
      frameAncestors.push(origin);
    }
  }

  return {
    publicUrl,
    frameAncestors,
    linkTtlSeconds: values.KEYPORT_PORTAL_LINK_TTL_SECONDS,
    sessionTtlSeconds: values.KEYPORT_PORTAL_SESSION_TTL_SECONDS,
    secureCookie: production || publicUrl?.startsWith("https://") === true || frameAncestors.length > 0,
  };
}

export function parseUpgradeConfig(values: EnvValues, problems: string[]): UpgradeConfig {
  const hint = values.KEYPORT_UPGRADE_HINT;
  if (hint !== undefined && !HINT.test(hint)) problems.push("KEYPORT_UPGRADE_HINT must be one line of at most 200 characters");
  const url = values.KEYPORT_UPGRADE_URL;
  const isHttpUrl = url !== undefined && URL.canParse(url) && ["https:", "http:"].includes(new URL(url).protocol);
  if (url !== undefined && !isHttpUrl) problems.push("KEYPORT_UPGRADE_URL must be an http(s) URL");
  return { hint: hint !== undefined && HINT.test(hint) ? hint : undefined, url: isHttpUrl ? url : undefined };
}
