import type { IncomingHttpHeaders } from "node:http";
import { newId } from "./ids.js";

/** Longest `x-request-id` taken from a client; longer ones are replaced by our own. */
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * Shaped like a provider key (`sk-…`, as lib/scrub.ts recognises them) or a JWT (`eyJ….…`): a
 * client that sends its credential as a request id must not get it into logs and usage records.
 * Long random runs are allowed: UUIDs and trace ids are exactly that.
 */
const CREDENTIAL_SHAPED = /\b(?:sk|pk|rk)-|\beyJ[A-Za-z0-9_-]*\./;

/** Letters, digits and `. _ : -`: safe in a log line, a header and a usage record, nothing to escape. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]+$/;

/**
 * The request id of a call: the client's own `x-request-id` when it is safe to carry (1 to 128
 * characters of `[A-Za-z0-9._:-]`), so one id follows the request through the platform's logs and
 * ours; otherwise (absent, too long, other characters, repeated, or shaped like a key or a token,
 * which must not reach logs and usage records) a new `req_…` id. Never refuses the request: a
 * tracing header must not decide whether a call works.
 */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers["x-request-id"];
  if (typeof given === "string" && given.length <= MAX_REQUEST_ID_LENGTH && SAFE_REQUEST_ID.test(given) && !CREDENTIAL_SHAPED.test(given)) return given;
  return newId("req");
}
