import type { ProviderId } from "../lib/domain.js";
import type { KeyFormatProblem } from "./spec.js";

/** Shortest and longest key Keyport accepts for any provider, in characters. */
export const MIN_KEY_LENGTH = 20;
export const MAX_KEY_LENGTH = 256;

/**
 * Trims leading and trailing ASCII whitespace (space, tab, CR, LF), which copy-paste adds.
 * Anything else, including Unicode spaces, is left for `checkCommonKeyFormat` to refuse: silently
 * removing it would store a different key from the one the user holds.
 */
export function normalizeKey(raw: string): string {
  return raw.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

/** Guesses a key's provider from its prefix; `undefined` when the prefix is not one we know. */
export function detectKeyProvider(key: string): ProviderId | undefined {
  if (key.startsWith("sk-ant-")) return "anthropic";
  if (key.startsWith("sk-")) return "openai";
  return undefined;
}

// `\s` covers the Unicode space separators, NBSP, U+2028/2029 and U+FEFF; the zero-width
// characters below are not whitespace to JavaScript but are invisible and break headers all the same.
const WHITESPACE = /[\s\u180E\u200B-\u200D\u2060]/u;
const KEY_CHARACTERS = /^[A-Za-z0-9_-]+$/;

/**
 * Checks that hold for every provider's keys. Messages say what is wrong and what to do; they
 * never quote the key or any character of it, because they are shown and logged.
 */
export function checkCommonKeyFormat(key: string): KeyFormatProblem | undefined {
  if (key.length === 0) {
    return { code: "empty", message: "The API key is empty. Paste the key from your provider's dashboard." };
  }
  if (WHITESPACE.test(key)) {
    return {
      code: "whitespace",
      message:
        "The API key contains spaces, line breaks or invisible characters. Copy the key again without them.",
    };
  }
  if (!KEY_CHARACTERS.test(key)) {
    return {
      code: "characters",
      message:
        "The API key contains characters that API keys never use (only letters, digits, '-' and '_' are allowed). Copy the key again from your provider's dashboard.",
    };
  }
  if (key.length < MIN_KEY_LENGTH) {
    return {
      code: "length",
      message: "The API key is too short to be complete. Copy the whole key from your provider's dashboard.",
    };
  }
  if (key.length > MAX_KEY_LENGTH) {
    return {
      code: "length",
      message: "The API key is too long. Check that only one key was pasted.",
    };
  }
  return undefined;
}
