import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Principal } from "../auth/principal.js";
import { type JwtVerifier, principalFromOutcome } from "../auth/jwt-verifier.js";
import { readBearerToken } from "../auth/read-credential.js";
import type { Actor, AuditLog } from "../audit/audit-log.js";
import type { Tier } from "../config/tiers.js";
import { DecryptError } from "../crypto/decrypt-error.js";
import type { Clock } from "../lib/clock.js";
import type { Lifecycle } from "../lib/lifecycle.js";
import type { ProviderId } from "../lib/domain.js";
import { AppError, isAppError } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import { scrubAndTrim } from "../lib/scrub.js";
import type { TierLimiter, TierLimitResult } from "../limits/tier-limiter.js";
import type { GatewayAdapter, GatewayEndpoint, PreparedRequest } from "../providers/gateway-spec.js";
import type { ProviderKeyRow, UsageRecord } from "../store/ports.js";
import type { KeyHealth } from "../vault/key-health.js";
import { type Cancellation, createCancellation } from "./cancellation.js";
import { type CallFacts, newCallFacts, type Pricing, toUsageRecord } from "./call-record.js";
import { type ForwardDeps, forwardWithRetries } from "./forward.js";
import { relay } from "./relay.js";
import type { KeySelection, KeySelector } from "./key-selection.js";
import { type KeySource, upstreamRequestHeaders } from "./upstream-headers.js";
import { UpstreamFailure } from "./upstream.js";
import { requireJsonContentType } from "./request-body.js";
import type { GatewayRequest } from "./gateway-request.js";

export type GatewayRoute = { provider: ProviderId; endpoint: GatewayEndpoint; method: "GET" | "POST" };

export type ProxyDeps = ForwardDeps & {
  adapters: Readonly<Record<ProviderId, GatewayAdapter>>;
  verifier: JwtVerifier;
  selector: KeySelector;
  tierLimiter: TierLimiter;
  tiers: Readonly<Record<string, Tier>>;
  /** What to do when the limiter's backend is down: `open` lets calls through (default), `closed` refuses. */
  rateLimitOnError: "open" | "closed";
  /** A BYOK key the provider rejects mid-call: retry once on the platform key, or return the error. */
  fallbackOnInvalid: "platform" | "error";
  keyHealth: KeyHealth;
  auditLog: AuditLog;
  recordUsage: (record: UsageRecord) => void;
  pricing: Pricing;
  clock: Clock;
  lifecycle: Lifecycle;
  /** Beta values (or beta header names) callers may use with the platform key. */
  platformBetas: ReadonlySet<string>;
  /** Every configured platform key: scrubbed out of relayed error bodies whichever key served. */
  platformSecrets: readonly Redacted<string>[];
};

/** A credential ready for one attempt: the key, and the headers that say where it came from. */
type Credential = { source: KeySource; apiKey: Redacted<string>; headers: Record<string, string> };

/**
 * The gateway pipeline for one call: authenticate → pick the key → limit (platform traffic) →
 * forward with retries → relay (streams pass through as they arrive) → record usage off the hot
 * path. Errors before the first byte are rendered in the provider's own shape.
 */
export function createProxy(deps: ProxyDeps) {
  const { adapters, verifier, selector, keyHealth, auditLog, clock } = deps;

  /** The caller's principal, without a promise when the token was verified before (nearly every call). */
  function authenticate(request: GatewayRequest): Principal | Promise<Principal> {
    const token = readBearerToken(request.headers, { allowXApiKey: true });
    if (token === undefined) throw new AppError("unauthenticated", "Missing credentials: send your Keyport token as the API key.");
    const cached = verifier.verifyCached(token);
    return cached === undefined ? verifier.verify(token).then(principalFromOutcome) : principalFromOutcome(cached);
  }

  async function limitPlatformCall(owner: string, tierName: string, request: GatewayRequest): Promise<Record<string, string>> {
    const tier = deps.tiers[tierName];
    if (tier === undefined) throw new AppError("forbidden", "Unknown tier.");
    let result: TierLimitResult;
    try {
      result = await deps.tierLimiter.check(owner, tier);
    } catch (error) {
      request.log.warn({ err: error }, "rate limiter unavailable");
      if (deps.rateLimitOnError === "open") return {};
      throw new AppError("unavailable", "Rate limiting is temporarily unavailable; retry shortly.");
    }
    const headers = {
      "ratelimit-limit": String(result.limit),
      "ratelimit-remaining": String(result.remaining),
      "ratelimit-reset": String(result.resetSeconds),
    };
    if (!result.allowed) {
      throw new AppError(
        "rate_limited",
        `Rate limit reached for the platform key: ${result.limit} requests per ${result.window} on your plan. Retry in ${result.resetSeconds}s, or add your own API key.`,
        { headers: { ...headers, "retry-after": String(result.resetSeconds) } },
      );
    }
    return headers;
  }

  async function platformCredential(apiKey: Redacted<string>, principal: Principal, request: GatewayRequest): Promise<Credential> {
    return { source: "platform", apiKey, headers: { "x-keyport-key-source": "platform", ...(await limitPlatformCall(principal.owner, principal.tier, request)) } };
  }

  async function refuseUndecryptable(row: ProviderKeyRow, error: DecryptError): Promise<never> {
    await keyHealth.markUndecryptable(row, error);
    throw new AppError("key_undecryptable", "Your stored API key can no longer be decrypted and must be re-entered in Settings.");
  }

  /**
   * Turns a selection into a usable credential, or stops the call with the right error. The
   * owner's own key is ready without a promise; the platform key waits for the rate limiter.
   */
  function credentialFor(selection: KeySelection, principal: Principal, request: GatewayRequest, facts: CallFacts): Credential | Promise<Credential> {
    switch (selection.source) {
      case "none":
        throw new AppError(
          "no_key_available",
          `No API key available for ${facts.provider}: add your own key in Settings${selection.reason === "byok_not_allowed" ? " (your plan uses the platform key, which is not configured)" : ""}.`,
        );
      case "blocked":
        facts.keyId = selection.record.row.id;
        throw new AppError("key_undecryptable", "Your stored API key can no longer be decrypted and must be re-entered in Settings.");
      case "platform":
        facts.source = "platform";
        facts.keyId = null;
        return platformCredential(selection.apiKey, principal, request);
      case "byok": {
        const { row, open } = selection.record;
        facts.source = "byok";
        facts.keyId = row.id;
        try {
          return { source: "byok", apiKey: open(), headers: { "x-keyport-key-source": "byok" } };
        } catch (error) {
          if (!(error instanceof DecryptError)) throw error;
          return refuseUndecryptable(row, error);
        }
      }
    }
  }

  async function handle(route: GatewayRoute, request: GatewayRequest, response: ServerResponse): Promise<void> {
    const { lifecycle } = deps;
    lifecycle.enter();
    // During a shutdown, each answer closes its connection so clients reconnect elsewhere.
    if (lifecycle.closing) response.setHeader("connection", "close");
    const adapter = adapters[route.provider];
    const cancellation = createCancellation();
    response.on("close", () => {
      if (!response.writableFinished) cancellation.abort();
    });
    let facts: CallFacts | undefined;
    try {
      const authenticated = authenticate(request);
      const principal = authenticated instanceof Promise ? await authenticated : authenticated;
      facts = newCallFacts({
        owner: principal.owner,
        provider: route.provider,
        endpoint: route.endpoint,
        requestId: request.id,
        startedAtMs: performance.now(),
        createdAt: clock.now(),
      });
      if (route.method === "POST") requireJsonContentType(headerText(request.headers["content-type"]));
      const prepared = adapter.prepareRequest(route.endpoint, request.body);
      if (isAppError(prepared)) throw prepared;
      facts.requestedModel = prepared.model;
      facts.streamed = prepared.stream;
      await serve(route, request, response, adapter, principal, prepared, facts, cancellation);
    } catch (error) {
      renderFailure(error, adapter, request, response, facts, cancellation);
    } finally {
      if (facts?.wentUpstream === true) deps.recordUsage(toUsageRecord(facts, deps.pricing, performance.now()));
      lifecycle.leave();
      // Per-call lines only at debug or trace: at the default level the hot path writes no log.
      if (request.log.level === "debug" || request.log.level === "trace") {
        request.log.debug(
          { route: request.routePath, status: response.statusCode, source: facts?.source, outcome: facts?.status },
          "gateway call",
        );
      }
    }
  }

  async function serve(
    route: GatewayRoute,
    request: GatewayRequest,
    response: ServerResponse,
    adapter: GatewayAdapter,
    principal: Principal,
    prepared: PreparedRequest,
    facts: CallFacts,
    cancellation: Cancellation,
  ): Promise<void> {
    // The usual call's key record and credential are ready at once: no promise to wait for.
    const selecting = selector.select(principal, route.provider);
    let selection = selecting instanceof Promise ? await selecting : selecting;
    for (let fellBack = false; ; fellBack = true) {
      const pendingCredential = credentialFor(selection, principal, request, facts);
      const credential = pendingCredential instanceof Promise ? await pendingCredential : pendingCredential;
      const outcome = await forwardWithRetries(
        deps,
        adapter,
        {
          url: adapter.upstreamUrl(route.endpoint, searchOf(request.url)),
          method: route.method,
          headers: upstreamRequestHeaders(request.headers, adapter.requestHeaders, {
            source: credential.source,
            platformBetas: deps.platformBetas,
            auth: adapter.authHeaders(credential.apiKey),
            hasBody: prepared.body !== undefined,
          }),
          body: prepared.body,
          cancellation,
        },
        () => {
          facts.wentUpstream = true;
        },
      );
      if (outcome.kind === "error" && selection.source === "byok" && (outcome.failure === "invalid_key" || outcome.failure === "no_credits")) {
        const row = selection.record.row;
        const status = outcome.failure === "invalid_key" ? "invalid" : "no_credits";
        await keyHealth.markStatus(row, status, providerMessage(outcome.body));
        request.log.info({ keyId: row.id, provider: route.provider, status }, "provider refused the owner's key; key marked");
        if (!fellBack && deps.fallbackOnInvalid === "platform") {
          const next = await selector.select(principal, route.provider, { skipOwnKey: true });
          if (next.source === "platform") {
            await auditLog.record(principal.owner, "key.fell_back_to_platform", actorOf(principal, request), {
              keyId: row.id,
              detail: { provider: route.provider, reason: outcome.failure },
            });
            request.log.info({ keyId: row.id, provider: route.provider }, "falling back to the platform key");
            selection = next;
            continue;
          }
        }
      }
      const secrets = [credential.apiKey, ...deps.platformSecrets];
      const relaying = relay(outcome, { source: credential.source, secrets }, credential.headers, request.id, response, adapter, route.endpoint, prepared, facts, cancellation);
      if (relaying !== undefined) await relaying;
      return;
    }
  }

  return { handle };
}

export type Proxy = ReturnType<typeof createProxy>;

function renderFailure(
  error: unknown,
  adapter: GatewayAdapter,
  request: GatewayRequest,
  response: ServerResponse,
  facts: CallFacts | undefined,
  cancellation: Cancellation,
): void {
  if (cancellation.aborted || response.headersSent) {
    if (facts !== undefined) facts.status = cancellation.aborted ? "aborted" : "partial";
    if (!response.writableEnded) response.destroy();
    return;
  }
  const appError = toGatewayError(error);
  if (appError.code === "internal") request.log.error({ err: error }, "gateway call failed");
  const rendered = adapter.renderError(appError);
  if (facts !== undefined) {
    facts.httpStatus = rendered.status;
    facts.status = "error";
  }
  response.writeHead(rendered.status, { ...rendered.headers, "x-request-id": request.id });
  response.end(rendered.body);
}

function toGatewayError(error: unknown): AppError {
  if (isAppError(error)) return error;
  if (error instanceof UpstreamFailure) {
    return error.kind === "timeout"
      ? new AppError("upstream_timeout", "The provider did not answer in time.")
      : new AppError("upstream_error", "Could not reach the provider.");
  }
  return new AppError("internal", "Internal error", { cause: error });
}

/** The provider's error message, scrubbed, for the key's status detail. */
function providerMessage(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === "string") return scrubAndTrim(parsed.error.message);
  } catch {
    // Not JSON: fall through to the generic text.
  }
  return "The provider rejected the key during a call.";
}

function actorOf(principal: Principal, request: GatewayRequest): Actor {
  const userAgent = request.headers["user-agent"];
  return { actor: principal.sub, ip: request.ip, userAgent: typeof userAgent === "string" ? userAgent : null };
}

function searchOf(url: string): string {
  const index = url.indexOf("?");
  return index === -1 ? "" : url.slice(index);
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
