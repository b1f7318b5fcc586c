import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { AppError } from "../lib/errors.js";
import { type AddressClass, classifyAddress, describeAddressClass } from "./address-ranges.js";

/** Resolves a host name to every address it has (both families). */
export type ResolveHost = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

export type WebhookUrlPolicy = {
  /** Production: only `https://`. */
  requireHttps: boolean;
  /** `KEYPORT_WEBHOOK_ALLOW_PRIVATE=true`: skip the address checks (and the DNS lookup). */
  allowPrivateAddresses: boolean;
  /** DNS resolution; default `dns.lookup` with `all: true` (what the connection would use). */
  resolve?: ResolveHost;
};

export type WebhookUrlRejection =
  | "malformed"
  | "scheme"
  | "https_required"
  | "credentials"
  | "fragment"
  | "unresolvable"
  | AddressClass;

export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: WebhookUrlRejection; message: string };

export const MAX_WEBHOOK_URL_LENGTH = 2048;

const defaultResolve: ResolveHost = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** The URL's host without IPv6 brackets. */
export function bareHostname(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

function refuse(reason: WebhookUrlRejection, message: string): WebhookUrlCheck {
  return { ok: false, reason, message: `webhookUrl ${message}` };
}

/**
 * The checks that need no network: an absolute http(s) URL (https only when required), no
 * credentials in it, and an IP-literal host that is public. Host names are judged by
 * `checkResolvedAddresses` once resolved.
 */
export function checkWebhookUrlSyntax(text: string, policy: Pick<WebhookUrlPolicy, "requireHttps" | "allowPrivateAddresses">): WebhookUrlCheck {
  if (text.length > MAX_WEBHOOK_URL_LENGTH || !URL.canParse(text)) {
    return refuse("malformed", `must be an absolute URL such as https://example.com/keyport-events (at most ${MAX_WEBHOOK_URL_LENGTH} characters)`);
  }
  const url = new URL(text);
  if (url.protocol !== "https:" && url.protocol !== "http:") return refuse("scheme", "must start with https://");
  if (policy.requireHttps && url.protocol !== "https:") return refuse("https_required", "must use https:// (plain http:// is refused in production)");
  if (url.username !== "" || url.password !== "") {
    return refuse("credentials", "must not contain a user name or password; webhooks are authenticated by their signature");
  }
  // A fragment is never sent; one in a webhook URL is a mistake worth saying.
  if (url.hash !== "") return refuse("fragment", "must not contain a fragment (#…)");
  const host = bareHostname(url);
  if (!policy.allowPrivateAddresses && isIP(host) !== 0) {
    const kind = classifyAddress(host);
    if (kind !== undefined) return refuse(kind, `must point to a public address: ${host} is ${describeAddressClass(kind)}`);
  }
  return { ok: true, url };
}

/**
 * Judges every address a host name resolved to: one non-public address is enough to refuse (a
 * name with both a public and a private answer could be steered to either).
 */
export function checkResolvedAddresses(
  hostname: string,
  addresses: readonly { address: string }[],
): { ok: true } | { ok: false; reason: AddressClass; detail: string } {
  for (const { address } of addresses) {
    const kind = classifyAddress(address);
    if (kind !== undefined) return { ok: false, reason: kind, detail: `${hostname} resolves to ${address}, ${describeAddressClass(kind)}` };
  }
  return { ok: true };
}

/**
 * Whether an owner may use `text` as their webhook URL: the syntax checks, then (unless private
 * addresses are allowed) the host name resolved and every address judged. Used when the URL is
 * saved; at delivery the same judgement runs inside the connection's own DNS lookup, so the
 * address checked is the address connected to.
 */
export async function checkWebhookUrl(text: string, policy: WebhookUrlPolicy): Promise<WebhookUrlCheck> {
  const syntax = checkWebhookUrlSyntax(text, policy);
  if (!syntax.ok || policy.allowPrivateAddresses) return syntax;
  const host = bareHostname(syntax.url);
  if (isIP(host) !== 0) return syntax;
  let addresses: readonly { address: string }[];
  try {
    addresses = await (policy.resolve ?? defaultResolve)(host);
  } catch {
    addresses = [];
  }
  if (addresses.length === 0) return refuse("unresolvable", `host ${host} could not be resolved; check the name`);
  const resolved = checkResolvedAddresses(host, addresses);
  return resolved.ok ? syntax : refuse(resolved.reason, `must point to a public address: ${resolved.detail}`);
}

/** `checkWebhookUrl` for a route: the URL, or a 400 `invalid_webhook_url` with the reason. */
export async function assertWebhookUrl(text: string, policy: WebhookUrlPolicy): Promise<URL> {
  const check = await checkWebhookUrl(text, policy);
  if (!check.ok) throw new AppError("invalid_webhook_url", `${check.message}.`, { internal: { reason: check.reason } });
  return check.url;
}
