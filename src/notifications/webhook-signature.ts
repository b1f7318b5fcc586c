import { createHmac, randomBytes } from "node:crypto";
import { webhookSecretBytes } from "../config/notifications-config.js";
import type { Redacted } from "../lib/redacted.js";

/** Bytes of key in a generated `whsec_` secret (Standard Webhooks allows 24 to 64). */
const SECRET_BYTES = 32;

/** A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(SECRET_BYTES).toString("base64")}`;
}

/** The headers of one signed webhook request. */
export type WebhookSignatureHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

/**
 * Signs a webhook the Standard Webhooks way: HMAC-SHA256 keyed with the secret's bytes (the
 * base64 after `whsec_`) over `<id>.<timestamp>.<body>`, sent as `v1,<base64>`. Several secrets
 * (during a rotation) give several space-separated signatures; a receiver accepts any one.
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 * @throws Error when a secret is not a `whsec_` secret (configuration is checked before this)
 */
export function signWebhook(input: { id: string; timestampSeconds: number; body: string; secrets: readonly Redacted<string>[] }): WebhookSignatureHeaders {
  const timestamp = String(input.timestampSeconds);
  const signatures = input.secrets.map((secret) => {
    const key = webhookSecretBytes(secret.reveal());
    if (key === undefined) throw new Error("webhook secret is not a whsec_ secret");
    try {
      return `v1,${createHmac("sha256", key).update(`${input.id}.${timestamp}.${input.body}`, "utf8").digest("base64")}`;
    } finally {
      key.fill(0);
    }
  });
  return { "webhook-id": input.id, "webhook-timestamp": timestamp, "webhook-signature": signatures.join(" ") };
}
