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

/**
 * Standard output, written in batches: lines gather up to 4 KiB and go out at least every 250 ms,
 * so a busy gateway's access log costs one `write(2)` per few dozen calls instead of one per call.
 * pino flushes what is left when the process exits (not on SIGKILL: at most the last 250 ms).
 */
function batchedStdout(): DestinationStream {
  return pino.destination({ dest: process.stdout.fd, minLength: 4096, periodicFlush: 250 });
}

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError, error: serializeError },
      base: { service: "keyport" },
    },
    options.destination ?? batchedStdout(),
  );
}
