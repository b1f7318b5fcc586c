/**
 * One error vocabulary for the whole service. Each code has a fixed HTTP status and says whether
 * retrying can help; renderers (management API, provider-shaped gateway errors) map by `code`.
 */
export const errorCodes = {
  invalid_request: { status: 400, retryable: false },
  invalid_json: { status: 400, retryable: false },
  invalid_key_format: { status: 400, retryable: false },
  invalid_cursor: { status: 400, retryable: false },
  invalid_webhook_url: { status: 400, retryable: false },
  unauthenticated: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  no_key_available: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  duplicate_key: { status: 409, retryable: false },
  idempotency_in_progress: { status: 409, retryable: true },
  key_undecryptable: { status: 409, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  key_rejected: { status: 422, retryable: false },
  idempotency_mismatch: { status: 422, retryable: false },
  rate_limited: { status: 429, retryable: true },
  budget_exceeded: { status: 429, retryable: false },
  internal: { status: 500, retryable: true },
  upstream_error: { status: 502, retryable: true },
  unavailable: { status: 503, retryable: true },
  upstream_timeout: { status: 504, retryable: true },
  /** This instance is stopping: a stream still running at the drain deadline ends with it. */
  shutting_down: { status: 503, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof errorCodes;

/** The `type` field of the management API's error envelope, derived from the status. */
export function errorTypeOf(code: ErrorCode): string {
  const { status } = errorCodes[code];
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/**
 * An error that stops a request. `publicMessage` is safe to show to the caller; `internal` is
 * for logs only and is never rendered.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly publicMessage: string;
  readonly internal: Record<string, unknown>;
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    publicMessage: string,
    options: { internal?: Record<string, unknown>; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.publicMessage = publicMessage;
    this.internal = options.internal ?? {};
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return errorCodes[this.code].status;
  }
}

/** A backend Keyport needs: the database (SQLite or PostgreSQL) or Redis. */
export type Dependency = "database" | "redis";

/** What a client is told to wait (`retry-after`, seconds) when a dependency cannot be reached. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

/**
 * A dependency could not be reached, so this request cannot be served now: `unavailable` (503)
 * with `retry-after`, in the management API's envelope and in the gateway's provider-shaped
 * errors alike (both render by `code` and pass `headers` on). The driver's error is never
 * attached (its properties can hold a connection string); its scrubbed message goes to
 * `internal.reason`, for logs.
 */
export class DependencyUnavailableError extends AppError {
  readonly dependency: Dependency;

  constructor(dependency: Dependency, publicMessage: string, options: { reason?: string; retryAfterSeconds?: number } = {}) {
    super("unavailable", publicMessage, {
      internal: { backend: dependency, ...(options.reason === undefined ? {} : { reason: options.reason }) },
      headers: { "retry-after": String(options.retryAfterSeconds ?? DEPENDENCY_RETRY_AFTER_SECONDS) },
    });
    this.name = "DependencyUnavailableError";
    this.dependency = dependency;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** For exhaustive switches over unions. */
export function assertNever(value: never): never {
  throw new Error(`Unexpected value: ${String(value)}`);
}
