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

/** Shortest run of a known secret that counts as a leak of it (shorter runs occur by chance). */
export const SECRET_FRAGMENT_MIN_LENGTH = 16;

/**
 * Replaces every run of at least `minLength` characters that also occurs inside one of `secrets`,
 * whatever surrounds it: a proxy or provider that quotes part of a key (masked, cut, without its
 * `sk-` prefix) leaks that part. Overlapping and adjacent matches become one `[redacted]`. Linear
 * in the text's length times `minLength`; meant for error bodies and messages, not for streams.
 */
export function scrubSecretFragments(text: string, secrets: readonly string[], minLength = SECRET_FRAGMENT_MIN_LENGTH): string {
  if (text.length < minLength) return text;
  const windows = new Set<string>();
  for (const secret of secrets) {
    for (let start = 0; start + minLength <= secret.length; start += 1) windows.add(secret.slice(start, start + minLength));
  }
  if (windows.size === 0) return text;
  let out = "";
  let copiedUpTo = 0;
  let runEnd = -1;
  for (let start = 0; start + minLength <= text.length; start += 1) {
    if (!windows.has(text.slice(start, start + minLength))) continue;
    if (start > runEnd) {
      // A new run: flush the text before it, and the marker for the run before that.
      if (runEnd !== -1) out += "[redacted]";
      out += text.slice(copiedUpTo, start);
    }
    runEnd = start + minLength;
    copiedUpTo = runEnd;
  }
  if (runEnd === -1) return text;
  return `${out}[redacted]${text.slice(copiedUpTo)}`;
}
