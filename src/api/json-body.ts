import { AppError } from "../lib/errors.js";

/**
 * The management API's JSON parser. Malformed JSON is `invalid_json` (the parser's own message
 * quotes the input, which may hold a key, so it is never shown); valid JSON that tries prototype
 * poisoning (`__proto__`, `constructor.prototype`) is an ordinary bad request, like any other
 * field the schema does not allow.
 */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AppError("invalid_json", "Request body is not valid JSON.");
  }
  if (hasForbiddenKey(value)) {
    throw new AppError("invalid_request", "Invalid request body: fields named __proto__ or constructor.prototype are not allowed.");
  }
  return value;
}

/**
 * Refuses a JSON body declared in any charset but UTF-8 (RFC 8259 §8.1: JSON exchanged between
 * systems is UTF-8). Read as UTF-8 anyway, a UTF-16 body would be garbage, not the sender's data.
 */
export function assertUtf8Json(contentType: string | undefined): void {
  const charsets = [...(contentType ?? "").matchAll(/;\s*charset\s*=\s*"?([^";\s]*)"?/gi)].map((match) => match[1]?.toLowerCase());
  if (charsets.some((charset) => charset !== "utf-8" && charset !== "utf8")) {
    throw new AppError("unsupported_media_type", "Send the request body as application/json in UTF-8 (charset=utf-8 or no charset).");
  }
}

/** Iterative, so a deeply nested body cannot overflow the stack. */
function hasForbiddenKey(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== "object") continue;
    if (Object.hasOwn(value, "__proto__")) return true;
    const record = value as Record<string, unknown>;
    const constructor = Object.hasOwn(value, "constructor") ? record.constructor : undefined;
    if (constructor !== null && typeof constructor === "object" && Object.hasOwn(constructor, "prototype")) return true;
    for (const child of Object.values(record)) pending.push(child);
  }
  return false;
}
