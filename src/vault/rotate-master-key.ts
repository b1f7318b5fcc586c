import type { Envelope } from "../crypto/envelope.js";
import type { Clock } from "../lib/clock.js";
import type { DataKeyRepo } from "../store/ports.js";

export type RotationReport = {
  currentKid: string;
  rewrapped: number;
  /** Rows that could not be rewrapped (their master key is not configured). */
  failed: number;
  /** Data keys per master-key id after the run. */
  countsByKid: Record<string, number>;
};

export type RotateDeps = {
  dataKeys: Pick<DataKeyRepo, "listNotWrappedBy" | "rewrap" | "countByKid">;
  envelope: Pick<Envelope, "rewrapDataKey">;
  clock: Clock;
};

/**
 * Rewraps every data key with the current master key, in batches, while Keyport serves traffic.
 * Each row is replaced by compare-and-set, so a data key created or rewrapped concurrently is
 * never overwritten with a stale value; running it again is harmless (it only picks rows that
 * are still on an old key). Provider-key ciphertexts are sealed with data keys and do not change.
 */
export async function rotateMasterKey(
  { dataKeys, envelope, clock }: RotateDeps,
  currentKid: string,
  options: { batchSize?: number; onProgress?: (rewrapped: number) => void } = {},
): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 200;
  let rewrapped = 0;
  let failed = 0;
  let afterOwner: string | undefined;
  for (;;) {
    const batch = await dataKeys.listNotWrappedBy(currentKid, afterOwner, batchSize);
    if (batch.length === 0) break;
    for (const row of batch) {
      afterOwner = row.owner;
      let next: { kid: string; wrapped: string };
      try {
        next = envelope.rewrapDataKey(row.owner, row.wrapped);
      } catch {
        failed += 1;
        continue;
      }
      // A lost compare-and-set means someone else changed the row; it is on a current key now or
      // will be picked up by the next run.
      if (await dataKeys.rewrap(row.owner, row.wrapped, { ...next, at: clock.now().toISOString() })) rewrapped += 1;
    }
    options.onProgress?.(rewrapped);
  }
  return { currentKid, rewrapped, failed, countsByKid: await dataKeys.countByKid() };
}
