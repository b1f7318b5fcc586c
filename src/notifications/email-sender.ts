import type { EmailMessage } from "./email-message.js";

/** What one send came to. `permanent`: the server refused for good (5xx); retrying cannot help. */
export type EmailResult = { ok: true } | { ok: false; permanent: boolean; error: string };

/** Sends one plain-text email. The SMTP implementation is loaded only when `SMTP_URL` is set. */
export type EmailSender = {
  send(message: EmailMessage): Promise<EmailResult>;
  close(): Promise<void>;
};
