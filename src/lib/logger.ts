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
 * A log destination on a file descriptor, written once per turn of the event loop: the lines
 * logged during a turn (under load, the access lines of several calls) go out together in one
 * synchronous `write(2)` when the turn ends (`setImmediate`); what is left at exit is written
 * then. pino's default writes asynchronously through libuv's thread pool, which costs every line
 * written on its own (most of them below saturation) a wake-up of a pool thread and a completion
 * back on the event loop; a synchronous write costs neither, and a line is never later than its
 * turn. Synchronous as Node.js itself writes to a standard output that is a file or a pipe on
 * Linux (a full pipe is retried by pino's writer).
 */
export function fdWrittenPerTurn(fd: number): DestinationStream & { flush(done?: () => void): void } {
  const stream = pino.destination({ dest: fd, sync: true });
  const pending: string[] = [];
  let isTurnEndScheduled = false;
  const writePending = () => {
    if (pending.length === 0) return;
    const lines = pending.join("");
    pending.length = 0;
    stream.write(lines);
  };
  const endTurn = () => {
    isTurnEndScheduled = false;
    writePending();
  };
  process.once("exit", writePending);
  return {
    write(line: string) {
      pending.push(line);
      if (isTurnEndScheduled) return;
      isTurnEndScheduled = true;
      setImmediate(endTurn);
    },
    /** Writes the turn's lines now (pino's `logger.flush()`). */
    flush(done?: () => void) {
      writePending();
      done?.();
    },
  };
}

/** One standard output stream for the process, shared by every logger that writes there. */
let stdout: DestinationStream | undefined;

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError, error: serializeError },
      base: { service: "keyport" },
    },
    options.destination ?? (stdout ??= fdWrittenPerTurn(process.stdout.fd)),
  );
}
