import type { Envelope } from "../crypto/envelope.js";
import type { Clock } from "../lib/clock.js";
import type { DataKeyRepo } from "../store/ports.js";

export type DataKeysDeps = {
  dataKeys: Pick<DataKeyRepo, "find" | "insertIfAbsent">;
  envelope: Pick<Envelope, "createDataKey" | "unwrapDataKey">;
  clock: Clock;
};

/**
 * Per-owner data keys. An owner's data key is created on first use; the unwrapped key is handed
 * to a callback and not kept, so it lives in memory only while one operation needs it.
 */
export function createDataKeys({ dataKeys, envelope, clock }: DataKeysDeps) {
  async function unwrapOrCreate(owner: string): Promise<Buffer> {
    const stored = await dataKeys.find(owner);
    if (stored !== undefined) return envelope.unwrapDataKey(owner, stored.wrapped);
    const fresh = envelope.createDataKey(owner);
    const at = clock.now().toISOString();
    const winner = await dataKeys.insertIfAbsent({ owner, kid: fresh.kid, wrapped: fresh.wrapped, createdAt: at, updatedAt: at });
    // Another request may have created the owner's key first: use whichever row is stored.
    if (winner.wrapped === fresh.wrapped) return fresh.dataKey;
    fresh.dataKey.fill(0);
    return envelope.unwrapDataKey(owner, winner.wrapped);
  }

  /** Runs `use` with the owner's data key (created if missing) and wipes the buffer afterwards. */
  async function withDataKey<T>(owner: string, use: (dataKey: Buffer) => Promise<T> | T): Promise<T> {
    const dataKey = await unwrapOrCreate(owner);
    try {
      return await use(dataKey);
    } finally {
      dataKey.fill(0);
    }
  }

  return { withDataKey };
}

export type DataKeys = ReturnType<typeof createDataKeys>;
