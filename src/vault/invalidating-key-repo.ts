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
    insert: (row, options, events) => runChange(row.owner, () => keys.insert(row, options, events)),
    update: (owner, id, patch, at, events) => runChange(owner, () => keys.update(owner, id, patch, at, events)),
    activate: (owner, id, at, events) => runChange(owner, () => keys.activate(owner, id, at, events)),
    deactivate: (owner, id, at, events) => runChange(owner, () => keys.deactivate(owner, id, at, events)),
    replaceSecret: (owner, id, replacement, events) => runChange(owner, () => keys.replaceSecret(owner, id, replacement, events)),
    setStatus: (owner, id, change, events) => runChange(owner, () => keys.setStatus(owner, id, change, events)),
    delete: (owner, id, events) => runChange(owner, () => keys.delete(owner, id, events)),
  };
}
