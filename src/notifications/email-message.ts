import type { AuditEventType } from "../lib/domain.js";
import type { AuditEvent } from "../store/ports.js";

export type EmailMessage = { to: string; subject: string; text: string; messageId: string };

const SUBJECTS: Partial<Record<AuditEventType, string>> = {
  "key.invalidated": "Your {provider} API key was rejected by the provider",
  "key.no_credits": "Your {provider} API key has run out of credits",
  "key.undecryptable": "Your {provider} API key must be entered again",
  "budget.threshold_reached": "Your LLM spending reached your alert threshold",
  "budget.exceeded": "Your LLM spending limit was reached",
};

const WHAT_TO_DO: Partial<Record<AuditEventType, string>> = {
  "key.invalidated": "Calls no longer use this key. Replace it with a working key in your settings.",
  "key.no_credits": "Calls no longer use this key. Add credits with the provider, then test the key again in your settings.",
  "key.undecryptable": "The stored key can no longer be read. Enter it again in your settings.",
  "budget.threshold_reached": "Calls still go through. You can review your usage and limits in your settings.",
  "budget.exceeded": "Calls that would spend more are refused until the limit resets or is raised in your settings.",
};

/** Text from event detail, made safe for a mail header or a line: one line, no controls, bounded. */
function oneLine(value: unknown, maxLength = 200): string {
  const text = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
  const clean = (text ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
  return clean.length > maxLength ? `${clean.slice(0, maxLength - 1)}…` : clean;
}

const PROVIDER_NAMES: Readonly<Record<string, string>> = { openai: "OpenAI", anthropic: "Anthropic" };

/**
 * The email for a key-health or budget event: a fixed subject and a short plain-text body listing
 * the event's (non-secret) details. The message id is derived from the event id, so a repeated
 * send of one event is recognisable as the same message.
 */
export function emailForEvent(event: AuditEvent, to: string): EmailMessage {
  const provider = event.detail["provider"];
  const providerName = typeof provider === "string" ? (PROVIDER_NAMES[provider] ?? oneLine(provider, 40)) : "provider";
  const subject = (SUBJECTS[event.type] ?? `Keyport event ${event.type}`).replace("{provider}", providerName);
  const details = Object.entries(event.detail).map(([name, value]) => `  ${oneLine(name, 40)}: ${oneLine(value)}`);
  const lines = [
    subject.endsWith(".") ? subject : `${subject}.`,
    "",
    WHAT_TO_DO[event.type] ?? "",
    "",
    `Event: ${event.type}`,
    `When: ${event.createdAt}`,
    ...(event.keyId === null ? [] : [`Key: ${event.keyId}`]),
    ...(details.length === 0 ? [] : ["Details:", ...details]),
    "",
    `Event id: ${event.id}`,
  ];
  return { to, subject: `[Keyport] ${subject}`, text: `${lines.join("\n")}\n`, messageId: `<${event.id}@keyport>` };
}
