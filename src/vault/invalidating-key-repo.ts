import type { KeyRepo } from "../store/ports.js";

/**
 * Runs one write to an owner's keys so that every instance's key cache honours it (the key
 * cache's `change`): announced before it commits, announced again after.
 */
export type KeyChangeRunner = <T>(owner: string, write: () => Promise<T>) => Promise<T>;

/**
 * Wraps the key repository so that every write goes through `runChange`, on this instance and
 * (through the cache's coordinator) on every other one. By the time a change is acknowledged to
 * the caller no instance will use the old record. Doing it here means no service can forget it.
 */
export function withCacheInvalidation(keys: KeyRepo, runChange: KeyChangeRunner): KeyRepo {
  return {
    findById: (owner, id) => keys.findById(owner, id),
    findByFingerprint: (owner, fingerprint) => keys.findByFingerprint(owner, fingerprint),
    list: (owner, provider) => keys.list(owner, provider),
    findActive: (owner, provider) => keys.findActive(owner, provider),
    insert: (row, options) => runChange(row.owner, () => keys.insert(row, options)),
    update: (owner, id, patch, at) => runChange(owner, () => keys.update(owner, id, patch, at)),
    activate: (owner, id, at) => runChange(owner, () => keys.activate(owner, id, at)),
    deactivate: (owner, id, at) => runChange(owner, () => keys.deactivate(owner, id, at)),
    replaceSecret: (owner, id, replacement) => runChange(owner, () => keys.replaceSecret(owner, id, replacement)),
    setStatus: (owner, id, change) => runChange(owner, () => keys.setStatus(owner, id, change)),
    delete: (owner, id) => runChange(owner, () => keys.delete(owner, id)),
  };
}
