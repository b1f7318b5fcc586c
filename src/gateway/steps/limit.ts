import type { Principal } from "../../auth/principal.js";
import type { UpgradeConfig } from "../../config/portal-config.js";
import type { Tier } from "../../config/tiers.js";
import { AppError } from "../../lib/errors.js";
import type { TierLimiter, TierLimitResult } from "../../limits/tier-limiter.js";
import type { Credential } from "../call-context.js";
import type { GatewayLog } from "../gateway-request.js";
import { nextStepAdvice } from "./key-advice.js";

export type LimitDeps = {
  tierLimiter: TierLimiter;
  tiers: Readonly<Record<string, Tier>>;
  /** When the limiter's backend is down: `open` lets calls through, `closed` refuses them. */
  rateLimitOnError: "open" | "closed";
  /** The operator's upgrade hint, for plans that do not use the owner's own keys. */
  upgrade: UpgradeConfig;
};

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The tier's rate limits, for platform-key calls only (the owner's own key is limited by its own
 * provider account). Returns Keyport's `ratelimit-*` headers for the answer.
 * @throws AppError `rate_limited` (with `retry-after`), `unavailable` (backend down, fail closed)
 */
export async function limitPlatformCall(
  principal: Principal,
  credential: Credential,
  log: GatewayLog,
  deps: LimitDeps,
): Promise<Readonly<Record<string, string>>> {
  if (credential.source === "byok") return NO_HEADERS;
  const { reason } = credential;
  const tier = deps.tiers[principal.tier];
  if (tier === undefined) throw new AppError("forbidden", "Unknown tier.");
  let result: TierLimitResult;
  try {
    result = await deps.tierLimiter.check(principal.owner, tier);
  } catch (error) {
    log.warn({ err: error }, "rate limiter unavailable");
    if (deps.rateLimitOnError === "open") return NO_HEADERS;
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
      `Rate limit reached for the platform key: ${result.limit} requests per ${result.window} on your plan. Retry in ${result.resetSeconds}s${reason === "byok_not_allowed" ? ". " : ", or "}${nextStepAdvice(reason, deps.upgrade)}`,
      { headers: { ...headers, "retry-after": String(result.resetSeconds) } },
    );
  }
  return headers;
}
