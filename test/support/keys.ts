import { randomBytes } from "node:crypto";

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Random characters of the alphabet provider keys use. */
export function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return out;
}

/** A key shaped like a current OpenAI project key. Unique per call. */
export function openAiKey(): string {
  return `sk-proj-${randomToken(48)}`;
}

/** A key shaped like an Anthropic API key (`sk-ant-api03-` + 93 characters + `AA`). */
export function anthropicKey(): string {
  return `sk-ant-api03-${randomToken(93)}AA`;
}
