import { Agent, request } from "undici";
import type { Redacted } from "../lib/redacted.js";
import { createSafeLookup, type ResolveAll } from "./safe-lookup.js";
import { signWebhook } from "./webhook-signature.js";
import { checkWebhookUrlSyntax } from "./webhook-url-policy.js";

/** What one webhook attempt came to. `error` is short, fixed text: never a response body. */
export type WebhookResult = { ok: true; status: number } | { ok: false; error: string };

export type WebhookMessage = {
  url: string;
  /** `webhook-id`: the event id, the same on every attempt, so receivers can drop repeats. */
  id: string;
  body: string;
  secrets: readonly Redacted<string>[];
  timestampSeconds: number;
};

export type WebhookSender = {
  send(message: WebhookMessage): Promise<WebhookResult>;
  close(): Promise<void>;
};

export type WebhookSenderOptions = {
  /** One attempt from connect to the end of the response, in milliseconds. */
  timeoutMs: number;
  /**
   * `public`: the owner's webhooks: IP literals and every DNS answer must be public addresses,
   * checked on the connection's own lookup. `any`: the operator's webhook (configuration, like
   * the provider base URLs).
   */
  addresses: "public" | "any";
  requireHttps: boolean;
  userAgent: string;
  /** DNS for `public` senders; default the system resolver. */
  resolveAll?: ResolveAll;
};

/** Responses are read (to keep the connection usable) but never kept or shown. */
const RESPONSE_READ_LIMIT_BYTES = 64 * 1024;

const ERROR_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (DNS temporarily failing)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  UND_ERR_CONNECT_TIMEOUT: "timed out connecting",
  UND_ERR_HEADERS_TIMEOUT: "timed out waiting for the response",
  UND_ERR_BODY_TIMEOUT: "timed out reading the response",
  UND_ERR_SOCKET: "connection closed by the server",
  UND_ERR_ABORTED: "timed out",
  ABORT_ERR: "timed out",
};

/** The first error code in an error's cause chain. */
function errorCodeOf(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    if (typeof current === "object" && "code" in current && typeof current.code === "string") return current.code;
    current = typeof current === "object" && "cause" in current ? current.cause : undefined;
  }
  return undefined;
}

function unsafeAddressMessage(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; depth += 1) {
    if ("code" in current && current.code === "KEYPORT_UNSAFE_ADDRESS") return current.message;
    current = current.cause;
  }
  return undefined;
}

/**
 * Fixed text for a failed attempt, from the error's code only: a driver's message can quote a
 * header or a URL, and an attempt's error is shown to the owner.
 */
export function describeSendError(error: unknown): string {
  const unsafe = unsafeAddressMessage(error);
  if (unsafe !== undefined) return unsafe;
  if (error instanceof Error && error.name === "TimeoutError") return "timed out";
  const code = errorCodeOf(error);
  if (code === undefined) return "request failed";
  const known = ERROR_TEXT[code];
  if (known !== undefined) return known;
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code.startsWith("ERR_SSL")) return `TLS error (${code})`;
  return `request failed (${code.slice(0, 40)})`;
}

/**
 * Posts signed webhooks. Redirects are not followed (a 3xx is a failure), the response body is
 * drained and dropped, and one attempt is bounded by `timeoutMs` end to end.
 */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const isPublicOnly = options.addresses === "public";
  const dispatcher = new Agent({
    connect: {
      timeout: options.timeoutMs,
      ...(isPublicOnly ? { lookup: createSafeLookup(options.resolveAll) } : {}),
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 10_000,
    connections: 16,
  });

  return {
    async send(message: WebhookMessage): Promise<WebhookResult> {
      const checked = checkWebhookUrlSyntax(message.url, { requireHttps: options.requireHttps, allowPrivateAddresses: !isPublicOnly });
      if (!checked.ok) return { ok: false, error: `refused: ${checked.message.replace(/^webhookUrl /, "the URL ")}` };
      const headers = {
        "content-type": "application/json",
        "user-agent": options.userAgent,
        ...signWebhook({ id: message.id, timestampSeconds: message.timestampSeconds, body: message.body, secrets: message.secrets }),
      };
      try {
        const response = await request(checked.url, {
          dispatcher,
          method: "POST",
          headers,
          body: message.body,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        await response.body.dump({ limit: RESPONSE_READ_LIMIT_BYTES }).catch(() => undefined);
        if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, status: response.statusCode };
        const redirect = response.statusCode >= 300 && response.statusCode < 400 ? " (redirects are not followed)" : "";
        return { ok: false, error: `HTTP ${response.statusCode}${redirect}` };
      } catch (error) {
        return { ok: false, error: describeSendError(error) };
      }
    },

    close: () => dispatcher.close(),
  };
}
