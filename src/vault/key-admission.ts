import { AppError } from "../lib/errors.js";
import type { KeyStatus, ProviderId } from "../lib/domain.js";
import { redacted } from "../lib/redacted.js";
import type { RateLimiter } from "../limits/ports.js";
import type { KeyChecks } from "./key-checks.js";

export type Admission = { status: KeyStatus; statusDetail: string | null };

export type KeyAdmissionDeps = {
  checks: KeyChecks;
  /** Creates, secret replacements and tests per owner: without a limit they are a free stolen-key checker. */
  keyCheckLimiter: RateLimiter;
  onRejectedKey: "reject" | "store";
};

/**
 * Decides whether a submitted secret may be stored and with which status. Shared by create and
 * secret replacement so both follow the same rules.
 */
export function createKeyAdmission({ checks, keyCheckLimiter, onRejectedKey }: KeyAdmissionDeps) {
  async function chargeKeyCheck(owner: string): Promise<void> {
    const outcome = await keyCheckLimiter.consume(owner);
    if (!outcome.allowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(outcome.resetMs / 1000));
      throw new AppError("rate_limited", `Too many key checks: at most ${outcome.limit} per minute. Retry in ${retryAfterSeconds}s.`, {
        headers: { "retry-after": String(retryAfterSeconds) },
      });
    }
  }

  /** Live validation of a well-formed key. Throws 422 for a rejected key unless configured to store it. */
  async function admit(provider: ProviderId, apiKey: string): Promise<Admission> {
    const check = await checks.checkLive(provider, redacted(apiKey));
    switch (check.result) {
      case "valid":
        return { status: "valid", statusDetail: null };
      case "no_credits":
        return { status: "no_credits", statusDetail: check.message };
      case "invalid":
        if (onRejectedKey === "reject") {
          throw new AppError("key_rejected", `The provider rejected this key: ${check.message}`);
        }
        return { status: "invalid", statusDetail: check.message };
      case "rate_limited":
      case "unreachable":
        return { status: "unverified", statusDetail: `Not verified yet: ${check.message}` };
    }
  }

  return { chargeKeyCheck, admit, acceptFormat: checks.acceptFormat, checkLive: checks.checkLive };
}

export type KeyAdmission = ReturnType<typeof createKeyAdmission>;
