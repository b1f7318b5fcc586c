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
