import type { KeyRepo } from "../store/ports.js";

/**
 * Wraps the key repository so that every write tells the gateway's key cache, on this instance
 * and (through the cache's coordinator) on every other one. The invalidation is awaited before
 * the write returns, so by the time a change is acknowledged to the caller no instance will use
 * the old record. Doing it here means no service can forget it.
 */
export function withCacheInvalidation(keys: KeyRepo, invalidate: (owner: string) => Promise<void>): KeyRepo {
  async function after<T>(owner: string, result: Promise<T>): Promise<T> {
    try {
      return await result;
    } finally {
      await invalidate(owner);
    }
  }
  /** A status change that changed nothing (`undefined`: compare-and-set lost, or no such key) tells no cache. */
  async function afterStatusChange<T>(owner: string, result: Promise<T | undefined>): Promise<T | undefined> {
    let changed: T | undefined;
    try {
      changed = await result;
    } catch (error) {
      await invalidate(owner);
      throw error;
    }
    if (changed !== undefined) await invalidate(owner);
    return changed;
  }
  return {
    findById: (owner, id) => keys.findById(owner, id),
    findByFingerprint: (owner, fingerprint) => keys.findByFingerprint(owner, fingerprint),
    list: (owner, provider) => keys.list(owner, provider),
    findActive: (owner, provider) => keys.findActive(owner, provider),
    insert: (row, options) => after(row.owner, keys.insert(row, options)),
    update: (owner, id, patch, at) => after(owner, keys.update(owner, id, patch, at)),
    activate: (owner, id, at) => after(owner, keys.activate(owner, id, at)),
    deactivate: (owner, id, at) => after(owner, keys.deactivate(owner, id, at)),
    replaceSecret: (owner, id, replacement) => after(owner, keys.replaceSecret(owner, id, replacement)),
    setStatus: (owner, id, change) => afterStatusChange(owner, keys.setStatus(owner, id, change)),
    delete: (owner, id) => after(owner, keys.delete(owner, id)),
  };
}
