/**
 * Removes anything key-like from text that crosses a boundary (provider messages shown to users,
 * error details, status details). Provider 401 messages quote a fragment of the key, HTTP client
 * errors quote whole header values, and JSON parser errors quote input, so every message from
 * outside goes through here before it is stored, logged or rendered.
 */
const PATTERNS: readonly RegExp[] = [
  // Provider-style keys, including masked fragments such as `sk-5DJ2b*****7ckC`.
  /\b(?:sk|pk|rk)-[A-Za-z0-9_*.\-]{3,}/g,
  // Bearer credentials and JWT-looking strings.
  /\bBearer\s+[^\s"',]+/gi,
  /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  // Any long run of token characters (random secrets are long; words are not).
  /[A-Za-z0-9_\-+/=*]{32,}/g,
];

export function scrubSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const secret of known) {
    if (secret.length >= 8) out = out.split(secret).join("[redacted]");
  }
  for (const pattern of PATTERNS) out = out.replace(pattern, "[redacted]");
  return out;
}

/** A bounded, single-line version for status details and audit entries. */
export function scrubAndTrim(text: string, maxLength = 300): string {
  const clean = scrubSecrets(text).replace(/[\r\n\t]+/g, " ").trim();
  return clean.length > maxLength ? `${clean.slice(0, maxLength - 1)}…` : clean;
}
