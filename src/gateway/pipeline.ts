import { performance } from "node:perf_hooks";
import type { Principal } from "../auth/principal.js";
import type { Lifecycle } from "../lib/lifecycle.js";
import type { CallContext, Credential } from "./call-context.js";
import { authenticate, type AuthenticateDeps } from "./steps/authenticate.js";
import type { CallBudget } from "./steps/budget.js";
import { fallBackFromRefusedKey, type FallBackDeps, isRefusedOwnKey } from "./steps/fall-back.js";
import { forward, type ForwardDeps } from "./steps/forward.js";
import { limitPlatformCall, type LimitDeps } from "./steps/limit.js";
import { readRequest } from "./steps/read-request.js";
import { finishCall, journalRestart, journalStart, type RecordDeps } from "./steps/record.js";
import { relay, type RelayDeps } from "./steps/relay.js";
import { noAnswerError, renderFailure } from "./steps/render-failure.js";
import type { KeySelector } from "./steps/select-key.js";

export type PipelineDeps = {
  lifecycle: Lifecycle;
  authenticate: AuthenticateDeps;
  selector: KeySelector;
  limit: LimitDeps;
  /** The budget step; `undefined` skips it (see `steps/budget.ts`). */
  budget: CallBudget | undefined;
  forward: ForwardDeps;
  fallBack: FallBackDeps;
  relay: RelayDeps;
  record: RecordDeps;
};

/**
 * One gateway call, top to bottom. Each step is a function in `steps/` that reads the call and
 * returns what it found; this function alone writes the findings into the call context, in the
 * order they happen:
 *
 *   authenticate → read → select → limit → budget → forward (→ fall back) → relay → record
 *
 * (select, limit and budget overlap across instances: see `selectLimitAndReserve`.)
 *
 * Any step may stop the call by throwing an `AppError`, which is answered in the provider's own
 * shape (`renderFailure`). Whatever happened, `finishCall` runs last: the usage record, the budget
 * settlement and the end-of-call listeners (metrics, access log) all come from the context.
 * Rejects only when `finishCall` itself throws (a bug); the dispatcher catches that.
 */
export async function runCall(call: CallContext, deps: PipelineDeps): Promise<void> {
  deps.lifecycle.enter();
  // During a shutdown, each answer closes its connection so clients reconnect elsewhere.
  if (deps.lifecycle.closing) call.response.setHeader("connection", "close");
  try {
    const principal = await authenticate(call.request, deps.authenticate);
    call.principal = principal;
    call.prepared = readRequest(call.endpoint, call.request);
    // Select, limit, then budget: the call's worst-case cost is reserved here, before anything
    // goes upstream; across instances all three share one Redis round trip.
    call.credential = await selectLimitAndReserve(call, principal, deps);
    // Journal: the call is on disk before it goes upstream, so a crash cannot lose its usage.
    call.journal = journalStart(call, deps.record);

    let sentAt = performance.now();
    let answer = await forward(call, call.credential, deps.forward);
    call.upstreamMs += performance.now() - sentAt;
    if (answer.wentUpstream) call.servedBy = call.credential;
    if (isRefusedOwnKey(answer, call.credential)) {
      // The provider refused the owner's key itself: mark it, and go once more on the platform key.
      const fallback = await fallBackFromRefusedKey(call, answer, deps.fallBack);
      if (fallback !== undefined) {
        call.credential = fallback;
        // The platform key has caps of its own (the plan's allowance): reserve again for it.
        releaseReservation(call, deps);
        await limitAndReserve(call, principal, deps);
        call.journal = journalRestart(call, deps.record);
        sentAt = performance.now();
        answer = await forward(call, fallback, deps.forward);
        call.upstreamMs += performance.now() - sentAt;
        if (answer.wentUpstream) call.servedBy = fallback;
      }
    }
    if (answer.kind === "failed") throw noAnswerError(answer.failure);

    call.outcome = await relay(call, answer, call.credential, deps.relay);
  } catch (error) {
    call.outcome = renderFailure(call, error);
  } finally {
    // A call still waiting for its answer at the drain deadline loses its connection to Keyport's
    // shutdown, which its cancellation cannot tell from a client going away.
    if (call.outcome?.status === "client_aborted" && deps.lifecycle.isCut) call.outcome.status = "shutdown_cut";
    try {
      finishCall(call, deps.record);
    } finally {
      deps.lifecycle.leave();
    }
  }
}

/**
 * Selects the call's key (returned, and set on the call for the steps below), then takes the
 * tier's rate limit and the budget reservation for it. Across instances the owner's cached key is
 * only a guess until Redis confirms the owner's version (`KeySelection`): the limit and the
 * reservation for the guess are asked before that answer is awaited, so all three travel in one
 * round trip. A guess the version does not confirm (the owner's keys changed on another instance)
 * never serves the call: what was taken for it is given back and taken again for the key that
 * does. A platform guess confirmed as the platform key keeps what it took: same counters, same caps.
 */
async function selectLimitAndReserve(call: CallContext, principal: Principal, deps: PipelineDeps): Promise<Credential> {
  const { guess, credential } = deps.selector.select(principal, call.adapter.id);
  if (guess === undefined) {
    call.credential = await credential;
    await limitAndReserve(call, principal, deps);
    return call.credential;
  }
  call.credential = guess;
  // Both settle before anything is decided: a refusal taken for a wrong guess is no refusal.
  const [taken, confirmed] = await Promise.allSettled([limitAndReserve(call, principal, deps), credential]);
  if (confirmed.status === "rejected") {
    call.credential = undefined;
    throw confirmed.reason;
  }
  call.credential = confirmed.value;
  const keepsTaken = confirmed.value === guess || (guess.source === "platform" && confirmed.value.source === "platform" && taken.status === "fulfilled");
  if (keepsTaken) {
    if (taken.status === "rejected") throw taken.reason;
    return confirmed.value;
  }
  // A rate-limit slot a platform guess took stays counted (docs/decisions.md).
  releaseReservation(call, deps);
  await limitAndReserve(call, principal, deps);
  return confirmed.value;
}

/** Gives back what was reserved for the call's key so far (nothing went upstream with it). */
function releaseReservation(call: CallContext, deps: PipelineDeps): void {
  if (call.reservation !== undefined) deps.budget?.release(call.reservation);
  call.reservation = undefined;
}

/**
 * The tier's rate limit and the budget reservation for the call's current key. Both requests are
 * made before either answer is awaited, so on Redis they travel together (one round trip). A
 * reservation taken for a call the rate limit then refuses is released by `finishCall` (nothing
 * went upstream); a rate-limit slot taken by a call the budget refuses stays counted.
 */
async function limitAndReserve(call: CallContext, principal: Principal, deps: PipelineDeps): Promise<void> {
  const credential = call.credential;
  if (credential === undefined) return;
  const limiting = limitPlatformCall(principal, credential, call.request.log, deps.limit);
  if (deps.budget === undefined) {
    call.limitHeaders = await limiting;
    return;
  }
  const [limited, reserved] = await Promise.allSettled([limiting, deps.budget.reserve(call)]);
  if (reserved.status === "fulfilled") call.reservation = reserved.value;
  if (limited.status === "rejected") throw limited.reason;
  if (reserved.status === "rejected") throw reserved.reason;
  call.limitHeaders = limited.value;
}
