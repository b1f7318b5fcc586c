import type { UpgradeConfig } from "../../config/portal-config.js";
import type { PlatformReason } from "../call-context.js";

/**
 * What a refused platform call tells the user to do next. Adding their own key only helps on a
 * plan that uses it; on any other plan the operator's upgrade hint (and link) is the way forward,
 * so the gateway never sends a user to add a key their plan will not use.
 */
export function nextStepAdvice(reason: PlatformReason, upgrade: UpgradeConfig): string {
  if (reason !== "byok_not_allowed") return "add your own API key in Settings.";
  const hint = upgrade.hint ?? "Your plan does not use your own API keys.";
  return upgrade.url === undefined ? hint : `${hint} ${upgrade.url}`;
}
