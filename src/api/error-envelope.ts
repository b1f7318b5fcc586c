import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AppError, errorCodes, errorTypeOf, isAppError } from "../lib/errors.js";

/**
 * Turns anything thrown in a management route into an `AppError`. Fastify's own errors are
 * mapped by code; their messages come from Ajv (field names, never values) or are replaced by
 * ours. Unknown errors become a generic 500: their text is logged, never rendered.
 */
export function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const fastifyError = error as Partial<FastifyError> & { validation?: unknown; validationContext?: string };
  if (fastifyError.validation !== undefined) {
    const where = fastifyError.validationContext ?? "body";
    // Ajv's message for an unknown field does not say which field it was.
    const [first] = Array.isArray(fastifyError.validation) ? (fastifyError.validation as { keyword?: unknown; params?: { additionalProperty?: unknown } }[]) : [];
    const unknown = first?.keyword === "additionalProperties" && typeof first.params?.additionalProperty === "string" ? ` (${first.params.additionalProperty})` : "";
    return new AppError("invalid_request", `Invalid request ${where}: ${fastifyError.message ?? "does not match the schema"}${unknown}.`);
  }
  switch (fastifyError.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new AppError("invalid_json", "Request body is not valid JSON.");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new AppError("invalid_json", "Request body is empty; send a JSON object.");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new AppError("payload_too_large", "Request body is too large.");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new AppError("unsupported_media_type", "Send the request body as application/json.");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new AppError("invalid_request", "Content-Length does not match the body.");
    default:
      break;
  }
  // Prototype poisoning and other client errors Fastify raises with a 4xx status.
  if (typeof fastifyError.statusCode === "number" && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    if (fastifyError.statusCode === 413) return new AppError("payload_too_large", "Request body is too large.");
    return new AppError("invalid_request", "The request could not be processed.", { internal: { code: fastifyError.code } });
  }
  return new AppError("internal", "Internal error", { cause: error });
}

export function renderApiError(error: AppError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(errorCodes[error.code].status).send({
    error: { type: errorTypeOf(error.code), code: error.code, message: error.publicMessage, requestId: request.id },
  });
}
