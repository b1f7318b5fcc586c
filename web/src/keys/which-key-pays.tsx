import type { ApiKey, ApiKeyListing, Plan, ProviderRouting } from "keyport/client";
import { PROVIDER_NAMES } from "../ui/format.js";
import { statusText } from "./key-status.js";

/**
 * Which key pays for each provider's calls, in plain words: the same answer the gateway acts on
 * (`providers` of `GET /api/v1/api-keys`).
 */
export function WhichKeyPays({ listing }: { listing: ApiKeyListing }) {
  const { plan } = listing;
  return (
    <section class="card" aria-labelledby="which-key-pays">
      <h2 id="which-key-pays">Which key pays</h2>
      <dl class="pays">
        {listing.providers.map((route) => (
          <div key={route.provider} class={`pays-row pays-${route.source}`}>
            <dt>{PROVIDER_NAMES[route.provider]}</dt>
            <dd>{sentence(route, plan, listing.keys)}</dd>
          </div>
        ))}
      </dl>
      {plan.byokAllowed ? null : <UpgradeNote plan={plan} />}
    </section>
  );
}

function UpgradeNote({ plan }: { plan: Plan }) {
  return (
    <p class="note">
      Your plan ({plan.tier}) uses the platform's keys. {plan.upgradeHint ?? ""}{" "}
      {plan.upgradeUrl === null ? null : <a href={plan.upgradeUrl}>See plans</a>}
    </p>
  );
}

export function sentence(route: ProviderRouting, plan: Plan, keys: readonly ApiKey[]): string {
  const own = keys.filter((key) => key.provider === route.provider);
  const active = own.find((key) => key.isActive);
  const named = (key: ApiKey) => `${key.label}, ${key.keyHint}`;
  const platform = `The platform's key: ${plan.platformRequestsPerMinute} requests a minute on your plan`;
  switch (route.source) {
    case "byok": {
      const key = own.find((candidate) => candidate.id === route.keyId) ?? active;
      return key === undefined ? "Your own key" : `Your own key (${named(key)})`;
    }
    case "blocked":
      return active === undefined
        ? "Your key needs to be re-entered: calls fail until you replace it"
        : `Your key ${active.label} (${active.keyHint}) needs to be re-entered: calls fail until you replace it`;
    case "platform":
      if (route.reason === "byok_not_allowed" && own.length > 0) {
        return "Your plan uses the platform key; your own keys are kept and used again on a plan that allows them";
      }
      if (route.reason === "own_key_unusable" && active !== undefined) {
        return `${platform} (your key ${active.label} is ${statusText(active.status).toLowerCase()})`;
      }
      return platform;
    case "none":
      if (route.reason === "byok_not_allowed") return "No key: your plan does not use your own keys, and no platform key is set up";
      if (route.reason === "own_key_unusable" && active !== undefined) {
        return `No key: your key ${active.label} is ${statusText(active.status).toLowerCase()}; test it again or replace it`;
      }
      return "No key: add yours";
  }
}
