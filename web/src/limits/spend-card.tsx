import { formatUsd, PROVIDER_NAMES } from "../ui/format.js";
import type { Limits, SpendCap } from "./limits-api.js";

const resetDate = new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeZone: "UTC" });

function capName(cap: SpendCap): string {
  switch (cap.kind) {
    case "owner_budget":
      return "Your monthly budget";
    case "key_limit": {
      const provider = PROVIDER_NAMES[cap.provider as keyof typeof PROVIDER_NAMES] ?? cap.provider;
      return `Key limit: ${cap.label} (${provider})`;
    }
    case "platform_allowance":
      return "Your plan's allowance on the platform key";
  }
}

function capKey(cap: SpendCap): string {
  if (cap.kind === "key_limit") return `key-${cap.keyId}`;
  return cap.kind;
}

/** This month's spend against each cap, and when the caps start again. */
export function SpendCard({ limits }: { limits: Limits }) {
  // The month ends the instant before `resetsAt`; show the day it starts again.
  const resets = resetDate.format(new Date(limits.period.resetsAt));
  return (
    <section class="card" aria-labelledby="spend-heading">
      <h2 id="spend-heading">This month</h2>
      <p>
        <strong>{formatUsd(limits.spentUsd)}</strong> spent so far. Caps start again on {resets} (UTC).
      </p>
      {limits.caps.length === 0 ? (
        <p class="hint">No spending cap applies to you yet. Set a monthly budget below to stop calls at an amount you choose.</p>
      ) : (
        <ul class="caps">
          {limits.caps.map((cap) => {
            const name = capName(cap);
            const reached = cap.remainingUsd <= 0;
            return (
              <li key={capKey(cap)} class="cap">
                <div class="cap-head">
                  <span>{name}</span>
                  <span>
                    {formatUsd(cap.spentUsd)} of {formatUsd(cap.limitUsd)}
                  </span>
                </div>
                <meter min={0} max={cap.limitUsd} value={Math.min(cap.spentUsd, cap.limitUsd)} aria-label={`${name}: spent`} />
                <p class={reached ? "hint hint-problem" : "hint"}>
                  {reached ? `Reached: calls it covers are refused until ${resets}.` : `${formatUsd(cap.remainingUsd)} left this month.`}
                </p>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
