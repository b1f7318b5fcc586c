import type { Principal } from "../auth/principal.js";
import type { UpgradeConfig } from "../config/portal-config.js";
import type { Tier } from "../config/tiers.js";
import { PROVIDER_IDS, type ProviderId } from "../lib/domain.js";
import type { Redacted } from "../lib/redacted.js";
import { decideKeySource, type KeySourceDecision, type PlatformReason } from "../vault/key-routing.js";
import type { KeyView } from "../vault/key-view.js";

/** The owner's plan as the API shows it. */
export type PlanView = {
  tier: string;
  byokAllowed: boolean;
  /** Platform-key limits on this plan. */
  platformRequestsPerMinute: number;
  platformRequestsPerDay: number;
  upgradeHint: string | null;
  upgradeUrl: string | null;
};

/** Which key pays for one provider's calls, as the API shows it. */
export type ProviderRoutingView = {
  provider: ProviderId;
  source: KeySourceDecision["source"];
  reason: Exclude<PlatformReason, "own_key_failed"> | null;
  /** The key that serves (byok) or blocks (blocked) the calls. */
  keyId: string | null;
  /** Whether the platform has a key for this provider at all. */
  platformKeyAvailable: boolean;
};

export type KeyRoutingDeps = {
  tiers: Readonly<Record<string, Tier>>;
  platformKeys: Readonly<Record<ProviderId, Redacted<string> | undefined>>;
  upgrade: UpgradeConfig;
};

/** Describes, for the owner's plan and stored keys, which key pays for each provider. */
export function createKeyRouting({ tiers, platformKeys, upgrade }: KeyRoutingDeps) {
  function tierOf(principal: Principal): Tier | undefined {
    return Object.hasOwn(tiers, principal.tier) ? tiers[principal.tier] : undefined;
  }

  function isByokAllowed(principal: Principal): boolean {
    return tierOf(principal)?.byokAllowed === true;
  }

  function plan(principal: Principal): PlanView {
    const tier = tierOf(principal);
    return {
      tier: principal.tier,
      byokAllowed: tier?.byokAllowed === true,
      platformRequestsPerMinute: tier?.requestsPerMinute ?? 0,
      platformRequestsPerDay: tier?.requestsPerDay ?? 0,
      upgradeHint: upgrade.hint ?? null,
      upgradeUrl: upgrade.url ?? null,
    };
  }

  /** `keys`: all of the owner's keys (any provider). */
  function providers(principal: Principal, keys: readonly KeyView[]): ProviderRoutingView[] {
    const byokAllowed = isByokAllowed(principal);
    return PROVIDER_IDS.map((provider) => {
      const active = keys.find((key) => key.provider === provider && key.isActive);
      const hasPlatformKey = platformKeys[provider] !== undefined;
      const decision = decideKeySource({ byokAllowed, activeStatus: active?.status, hasPlatformKey });
      const usesKey = decision.source === "byok" || decision.source === "blocked";
      return {
        provider,
        source: decision.source,
        reason: "reason" in decision ? decision.reason : null,
        keyId: usesKey && active !== undefined ? active.id : null,
        platformKeyAvailable: hasPlatformKey,
      };
    });
  }

  return { isByokAllowed, plan, providers };
}

export type KeyRouting = ReturnType<typeof createKeyRouting>;
