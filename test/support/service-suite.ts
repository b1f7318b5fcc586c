import { describe, it } from "vitest";

/** What one probe of a backing service found. */
export type ProbeOutcome = { reachable: true } | { reachable: false; reason: string };

/** How a suite finds out whether the service it needs answers. */
export type ServiceProbe<T> = {
  /** Human name for messages: "Redis", "PostgreSQL". */
  service: string;
  /** Where the service was looked for, safe to print (no password). */
  where: string;
  /** Handed to the suite body, usually the URL. */
  value: T;
  check(): Promise<ProbeOutcome>;
};

/**
 * Registers `body` as a suite when the service answers. When it does not, the suite fails under
 * `CI=true` (CI must exercise every backend) and is skipped with a loud warning elsewhere, so a
 * laptop without the service still runs everything else.
 */
export async function describeWithService<T>(name: string, probe: ServiceProbe<T>, body: (value: T) => void): Promise<void> {
  const outcome = await probe.check();
  if (outcome.reachable) {
    describe(name, () => body(probe.value));
    return;
  }
  if (process.env.CI === "true") {
    describe(name, () => {
      it(`has ${probe.service} to test against`, () => {
        throw new Error(`${probe.service} is required when CI=true: ${probe.where} is not reachable (${outcome.reason})`);
      });
    });
    return;
  }
  console.warn(`\n!!! ${probe.service} not reachable at ${probe.where} (${outcome.reason}): ${probe.service} tests SKIPPED !!!\n`);
  describe.skip(name, () => body(probe.value));
}
