import { pino, type DestinationStream, type Logger } from "pino";
import { scrubSecrets } from "./scrub.js";

/**
 * Paths pino replaces with `[redacted]` wherever they appear. Keys travel as `Redacted` values
 * and bodies are never logged; this is the second line of defence.
 */
const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  "req.headers.cookie",
  'res.headers["set-cookie"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "apiKey",
  "*.apiKey",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "password",
  "*.password",
];

type SerializedError = { type: string; message: string; stack?: string | undefined; code?: unknown };

/** Error serializer that keeps the type and code but scrubs anything key-like from text. */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { type: typeof error, message: scrubSecrets(String(error)) };
  const withCode = error as Error & { code?: unknown };
  return {
    type: error.name,
    message: scrubSecrets(error.message),
    stack: error.stack === undefined ? undefined : scrubSecrets(error.stack),
    code: withCode.code,
  };
}

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError, error: serializeError },
      base: { service: "keyport" },
    },
    options.destination,
  );
}
