import type { Provider } from "keyport/client";

/** What the paste field says as the user types. The server checks the key again, fully. */
export type FormatHint = { kind: "empty" } | { kind: "ok"; text: string } | { kind: "problem"; text: string };

/** Copy-paste adds spaces and line breaks at the ends; they are removed, never those inside. */
export function trimKey(raw: string): string {
  return raw.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

const PREFIX: Record<Provider, string> = { openai: "sk-", anthropic: "sk-ant-" };

/**
 * A hint from the key's shape: the prefix each provider's keys start with, and no whitespace
 * inside. Never quotes the key.
 */
export function formatHint(provider: Provider, raw: string): FormatHint {
  const key = trimKey(raw);
  if (key === "") return { kind: "empty" };
  if (/\s/.test(key)) return { kind: "problem", text: "The key has spaces or line breaks inside. Copy it again without them." };
  const isAnthropic = key.startsWith(PREFIX.anthropic);
  if (provider === "openai" && isAnthropic) return { kind: "problem", text: "This looks like an Anthropic key: choose Anthropic as the provider." };
  if (provider === "anthropic" && !isAnthropic && key.startsWith("sk-")) {
    return { kind: "problem", text: "This looks like an OpenAI key: choose OpenAI as the provider." };
  }
  if (!key.startsWith(PREFIX[provider])) {
    return { kind: "problem", text: `${provider === "openai" ? "OpenAI" : "Anthropic"} keys start with ${PREFIX[provider]}` };
  }
  return { kind: "ok", text: `Looks like ${provider === "openai" ? "an OpenAI" : "an Anthropic"} key.` };
}
