import { AppError } from "../lib/errors.js";
import type { KeyCheckResult, KeyStatus, ProviderId } from "../lib/domain.js";
import type { Redacted } from "../lib/redacted.js";
import type { KeyCheck, KeyFormatProblem, ProviderRegistry } from "../providers/spec.js";

/**
 * Format check then live check, through the provider's adapter. The vault decides what each
 * answer means for the stored key; adapters only report what the provider said.
 */
export type KeyChecksDeps = {
  providers: ProviderRegistry;
  normalizeKey: (raw: string) => string;
  checkCommonKeyFormat: (key: string) => KeyFormatProblem | undefined;
};

export function createKeyChecks({ providers, normalizeKey, checkCommonKeyFormat }: KeyChecksDeps) {
  /** Normalises a submitted key and refuses a malformed one with a 400 that never quotes it. */
  function acceptFormat(provider: ProviderId, raw: string): string {
    const key = normalizeKey(raw);
    const problem = checkCommonKeyFormat(key) ?? providers[provider].checkKeyFormat(key);
    if (problem !== undefined) {
      throw new AppError("invalid_key_format", `apiKey: ${problem.message}`, { internal: { reason: problem.code } });
    }
    return key;
  }

  function checkLive(provider: ProviderId, apiKey: Redacted<string>): Promise<KeyCheck> {
    return providers[provider].checkKey(apiKey);
  }

  return { acceptFormat, checkLive };
}

export type KeyChecks = ReturnType<typeof createKeyChecks>;

/** Status a key gets from a live check, or `undefined` to keep the status it has (transient answers). */
export function statusFromCheck(result: KeyCheckResult): KeyStatus | undefined {
  switch (result) {
    case "valid":
      return "valid";
    case "invalid":
      return "invalid";
    case "no_credits":
      return "no_credits";
    case "rate_limited":
    case "unreachable":
      return undefined;
  }
}
