import { AppError } from "../../lib/errors.js";
import type { GatewayEndpoint, PreparedRequest } from "../../providers/spec.js";
import type { GatewayRequest } from "../gateway-request.js";

/**
 * What the gateway needs from the client's request, by the endpoint's own reading: model, stream,
 * and the bytes to send upstream (the client's own, unless usage accounting needs a field).
 * @throws AppError `unsupported_media_type` (415) for a body that is not declared JSON, and the
 *   endpoint's own refusal of a body it cannot read (400)
 */
export function readRequest(endpoint: GatewayEndpoint, request: GatewayRequest): PreparedRequest {
  if (endpoint.method === "POST") requireJsonContentType(headerText(request.headers["content-type"]));
  const prepared = endpoint.prepare(request.body);
  if (prepared instanceof AppError) throw prepared;
  return prepared;
}

/**
 * Refuses a JSON route's body that is declared as something else (`text/plain`, a form) or in
 * another charset than UTF-8 (`application/json; charset=utf-16`): passed on, it would reach the
 * provider as bytes it reads differently from Keyport. No `content-type` at all is taken as JSON,
 * as the providers do.
 * @throws AppError `unsupported_media_type` (415)
 */
export function requireJsonContentType(contentType: string | undefined): void {
  if (contentType === undefined || isJsonContentType(contentType)) return;
  throw new AppError("unsupported_media_type", "The request body must be JSON: send it as application/json (UTF-8).");
}

/** `application/json` or `application/*+json`, with no charset or UTF-8, in any case and spacing. */
export function isJsonContentType(contentType: string): boolean {
  const [mediaType = "", ...parameters] = contentType.split(";");
  const type = mediaType.trim().toLowerCase();
  if (type !== "application/json" && !(type.startsWith("application/") && type.endsWith("+json"))) return false;
  for (const parameter of parameters) {
    const equals = parameter.indexOf("=");
    const name = parameter.slice(0, equals === -1 ? undefined : equals).trim().toLowerCase();
    if (name !== "charset") continue;
    const value = parameter.slice(equals + 1).trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    if (value !== "utf-8" && value !== "utf8") return false;
  }
  return true;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
