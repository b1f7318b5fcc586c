import type { ApiKeyTestResult, KeyStatus } from "keyport/client";
import { Icon, type IconName } from "../ui/icon.js";

const STATUS: Record<KeyStatus, { icon: IconName; text: string; tone: string }> = {
  valid: { icon: "valid", text: "Valid", tone: "good" },
  invalid: { icon: "invalid", text: "Invalid", tone: "bad" },
  no_credits: { icon: "warning", text: "No credits", tone: "warn" },
  unverified: { icon: "unknown", text: "Unverified", tone: "neutral" },
  undecryptable: { icon: "reenter", text: "Needs re-entry", tone: "bad" },
};

export function statusText(status: KeyStatus): string {
  return STATUS[status].text;
}

/** The key's status as a badge: an icon for the eye, the word for everyone. */
export function StatusBadge({ status }: { status: KeyStatus }) {
  const { icon, text, tone } = STATUS[status];
  return (
    <span class={`badge badge-${tone}`}>
      <Icon name={icon} />
      {text}
    </span>
  );
}

const RESULT: Record<ApiKeyTestResult["result"], { icon: IconName; text: string; tone: string }> = {
  valid: { icon: "valid", text: "Valid", tone: "good" },
  invalid: { icon: "invalid", text: "Invalid", tone: "bad" },
  no_credits: { icon: "warning", text: "No credits", tone: "warn" },
  rate_limited: { icon: "wait", text: "The provider is busy (rate limited); the status is unchanged. Try again in a minute", tone: "neutral" },
  unreachable: { icon: "offline", text: "The provider could not be reached; the status is unchanged. Try again later", tone: "neutral" },
};

/**
 * A test's outcome in one line: `short` without the provider's words, `text` with them unless
 * the key's status reason (shown above it) already says the same.
 */
export function testResultText(outcome: ApiKeyTestResult): { icon: IconName; short: string; text: string; tone: string } {
  const { icon, text, tone } = RESULT[outcome.result];
  const repeated = outcome.message === "" || outcome.message === outcome.key.statusDetail;
  const detail = outcome.result === "valid" || repeated ? "" : `: ${outcome.message}`;
  return { icon, short: text, text: `${text}${detail}`, tone };
}
