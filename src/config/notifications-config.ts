import { type Redacted, redacted } from "../lib/redacted.js";

/** Where and how notification events are delivered. */
export type NotificationsConfig = {
  /** The operator's webhook, sent every owner's events; off when unset. */
  operatorWebhook: { url: string; secret: Redacted<string> } | undefined;
  /**
   * Delays before the 2nd, 3rd, … attempt of one delivery, in milliseconds; after the last one
   * fails the delivery is given up. Default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (27.6 h).
   */
  retryScheduleMs: readonly number[];
  /** Lets owner webhooks reach loopback, private, link-local and metadata addresses. Default `false`. */
  allowPrivateAddresses: boolean;
  /** One webhook attempt (connect, headers and body), in milliseconds. Default 10 000. */
  webhookTimeoutMs: number;
  /** How often each instance looks for due deliveries, in milliseconds. Default 1 000. */
  pollIntervalMs: number;
  /** Email over SMTP; off when `SMTP_URL` is unset. */
  smtp: { url: Redacted<string>; from: string } | undefined;
};

export const DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h";

/** Standard Webhooks: a `whsec_` prefix, then the key in base64; 24 to 64 bytes. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
export const MIN_WEBHOOK_SECRET_BYTES = 24;
export const MAX_WEBHOOK_SECRET_BYTES = 64;

const DURATION_PATTERN = /^(\d{1,9})(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const MAX_RETRY_STEPS = 30;
const MAX_STEP_MS = 7 * 24 * 3_600_000;

/**
 * Parses a comma-separated list of delays such as `5s,5m,30m,2h` into milliseconds. Returns a
 * message instead when an entry is malformed, zero, longer than a week, or there are more than 30.
 */
export function parseDurationList(text: string): { ok: true; valuesMs: number[] } | { ok: false; message: string } {
  const parts = text.split(",").map((part) => part.trim());
  if (parts.length > MAX_RETRY_STEPS) return { ok: false, message: `has more than ${MAX_RETRY_STEPS} entries` };
  const valuesMs: number[] = [];
  for (const part of parts) {
    const match = DURATION_PATTERN.exec(part);
    const amount = match?.[1];
    const unit = match?.[2] as keyof typeof UNIT_MS | undefined;
    if (amount === undefined || unit === undefined) {
      return { ok: false, message: `entry "${part.slice(0, 20)}" is not a delay like 5s, 5m or 2h (units ms, s, m, h)` };
    }
    const valueMs = Number(amount) * UNIT_MS[unit];
    if (valueMs <= 0 || valueMs > MAX_STEP_MS) return { ok: false, message: `entry "${part}" must be more than 0 and at most 7 days` };
    valuesMs.push(valueMs);
  }
  return { ok: true, valuesMs };
}

/** Decoded length of a `whsec_…` secret, or undefined when it is not one. */
export function webhookSecretBytes(secret: string): Buffer | undefined {
  const encoded = WEBHOOK_SECRET_PATTERN.exec(secret)?.[1];
  if (encoded === undefined) return undefined;
  const bytes = Buffer.from(encoded, "base64");
  // Strict base64: re-encoding must give the text back (no stray or truncated characters).
  return bytes.toString("base64") === encoded ? bytes : undefined;
}

export type NotificationEnv = {
  KEYPORT_WEBHOOK_URL: string | undefined;
  KEYPORT_WEBHOOK_SECRET: string | undefined;
  KEYPORT_WEBHOOK_RETRY_SCHEDULE: string | undefined;
  KEYPORT_WEBHOOK_ALLOW_PRIVATE?: "true" | "false" | undefined;
  KEYPORT_WEBHOOK_TIMEOUT_MS: number;
  KEYPORT_NOTIFICATION_POLL_MS: number;
  SMTP_URL: string | undefined;
  SMTP_FROM: string | undefined;
};

/** Reads the notification settings; every problem is pushed to `problems` (never quoting a secret). */
export function parseNotificationsConfig(values: NotificationEnv, problems: string[]): NotificationsConfig {
  let operatorWebhook: NotificationsConfig["operatorWebhook"];
  const url = values.KEYPORT_WEBHOOK_URL;
  const secret = values.KEYPORT_WEBHOOK_SECRET;
  if (url !== undefined || secret !== undefined) {
    if (url === undefined || secret === undefined) {
      problems.push("KEYPORT_WEBHOOK_URL and KEYPORT_WEBHOOK_SECRET go together: set both or neither");
    } else if (!isHttpUrl(url)) {
      problems.push("KEYPORT_WEBHOOK_URL must be an http:// or https:// URL");
    } else {
      const bytes = webhookSecretBytes(secret);
      if (bytes === undefined || bytes.length < MIN_WEBHOOK_SECRET_BYTES || bytes.length > MAX_WEBHOOK_SECRET_BYTES) {
        problems.push(
          `KEYPORT_WEBHOOK_SECRET must be whsec_ followed by ${MIN_WEBHOOK_SECRET_BYTES} to ${MAX_WEBHOOK_SECRET_BYTES} bytes in base64 (generate one with \`echo "whsec_$(openssl rand -base64 32)"\`)`,
        );
      } else {
        operatorWebhook = { url, secret: redacted(secret) };
      }
    }
  }

  const schedule = parseDurationList(values.KEYPORT_WEBHOOK_RETRY_SCHEDULE ?? DEFAULT_RETRY_SCHEDULE);
  if (!schedule.ok) problems.push(`KEYPORT_WEBHOOK_RETRY_SCHEDULE ${schedule.message}`);

  let smtp: NotificationsConfig["smtp"];
  if (values.SMTP_URL !== undefined) {
    if (!/^smtps?:\/\//.test(values.SMTP_URL) || !URL.canParse(values.SMTP_URL)) {
      problems.push("SMTP_URL must be an smtp:// or smtps:// URL, e.g. smtps://user:password@smtp.example.com:465");
    } else if (values.SMTP_FROM === undefined) {
      problems.push('SMTP_FROM is required with SMTP_URL: the sender address, e.g. "Keyport <alerts@example.com>"');
    } else if (/[\r\n]/.test(values.SMTP_FROM) || !values.SMTP_FROM.includes("@")) {
      problems.push('SMTP_FROM must be one address, e.g. "Keyport <alerts@example.com>"');
    } else {
      smtp = { url: redacted(values.SMTP_URL), from: values.SMTP_FROM };
    }
  } else if (values.SMTP_FROM !== undefined) {
    problems.push("SMTP_FROM is set but SMTP_URL is not: set SMTP_URL to send email");
  }

  return {
    operatorWebhook,
    retryScheduleMs: schedule.ok ? schedule.valuesMs : [],
    allowPrivateAddresses: values.KEYPORT_WEBHOOK_ALLOW_PRIVATE === "true",
    webhookTimeoutMs: values.KEYPORT_WEBHOOK_TIMEOUT_MS,
    pollIntervalMs: values.KEYPORT_NOTIFICATION_POLL_MS,
    smtp,
  };
}

function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const protocol = new URL(text).protocol;
  return protocol === "https:" || protocol === "http:";
}
