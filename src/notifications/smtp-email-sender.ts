import nodemailer from "nodemailer";
import type { Redacted } from "../lib/redacted.js";
import type { EmailMessage } from "./email-message.js";
import type { EmailResult, EmailSender } from "./email-sender.js";

export type SmtpEmailSenderOptions = {
  /** `smtp://` or `smtps://` URL; may hold the SMTP password, hence redacted. */
  url: Redacted<string>;
  /** `From:` of every message. */
  from: string;
  /** Connect, greeting and socket inactivity, each, in milliseconds. */
  timeoutMs: number;
};

/**
 * An SMTP server's failure as fixed text: its reply code (the reply text can echo the
 * recipient or, on an AUTH failure, more than that), or the connection error's code.
 */
function describeSmtpError(error: unknown): { permanent: boolean; error: string } {
  const fields = typeof error === "object" && error !== null ? (error as { responseCode?: unknown; code?: unknown }) : {};
  if (typeof fields.responseCode === "number") {
    return { permanent: fields.responseCode >= 500 && fields.responseCode < 600, error: `SMTP ${fields.responseCode}` };
  }
  const code = typeof fields.code === "string" ? fields.code.slice(0, 40) : "unknown";
  return { permanent: false, error: `SMTP connection failed (${code})` };
}

/** Email over SMTP with nodemailer: one pooled transport for the life of the process. */
export function createSmtpEmailSender(options: SmtpEmailSenderOptions): EmailSender {
  const transport = nodemailer.createTransport({
    url: options.url.reveal(),
    pool: true,
    maxConnections: 2,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
  });

  return {
    async send(message: EmailMessage): Promise<EmailResult> {
      try {
        await transport.sendMail({
          from: options.from,
          // An address object is used as given; a string would be parsed as a list, so
          // "a@example.com,b@example.com" in a saved email could reach two people.
          to: { name: "", address: message.to },
          subject: message.subject,
          text: message.text,
          messageId: message.messageId,
          headers: { "Auto-Submitted": "auto-generated" },
        });
        return { ok: true };
      } catch (error) {
        return { ok: false, ...describeSmtpError(error) };
      }
    },

    async close(): Promise<void> {
      transport.close();
    },
  };
}
