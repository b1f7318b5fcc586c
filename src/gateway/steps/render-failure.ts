import { performance } from "node:perf_hooks";
import { AppError, isAppError } from "../../lib/errors.js";
import { NO_USAGE } from "../../lib/usage.js";
import type { UpstreamFailureKind } from "../../providers/upstream-client.js";
import type { CallContext, CallOutcome } from "../call-context.js";

/**
 * Ends a call that failed before (or instead of) relaying an answer: Keyport's own error in the
 * provider's shape, so the SDKs raise their usual typed errors. When the client is gone or the
 * answer had already started, there is nothing to render: the connection is closed.
 */
export function renderFailure(call: Readonly<CallContext>, error: unknown): CallOutcome {
  const { response, cancellation, request } = call;
  const streamed = call.prepared?.stream === true;
  if (cancellation.aborted || response.headersSent) {
    if (!response.writableEnded) response.destroy();
    const status = cancellation.aborted ? "client_aborted" : "partial";
    return { status, httpStatus: response.headersSent ? response.statusCode : 0, usage: NO_USAGE, reportedModel: undefined, streamed, firstByteAtMs: null };
  }
  const appError = isAppError(error) ? error : new AppError("internal", "Internal error", { cause: error });
  if (appError.code === "internal") request.log.error({ err: error }, "gateway call failed");
  const rendered = call.adapter.renderError(appError);
  response.writeHead(rendered.status, { ...rendered.headers, "x-request-id": request.id });
  response.end(rendered.body);
  return {
    status: "error",
    httpStatus: rendered.status,
    usage: NO_USAGE,
    reportedModel: undefined,
    streamed,
    firstByteAtMs: performance.now(),
    errorCode: appError.code,
  };
}

/** The error for a call whose every attempt got no answer from the provider. */
export function noAnswerError(failure: UpstreamFailureKind): AppError {
  return failure === "timeout"
    ? new AppError("upstream_timeout", "The provider did not answer in time.")
    : new AppError("upstream_error", "Could not reach the provider.");
}
