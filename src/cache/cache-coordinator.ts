/**
 * Keeps the key-record caches of every instance honest. Each owner has a version that changes
 * whenever anything about the owner's keys changes; a cache remembers the version it loaded an
 * entry at and, on every read, compares it with `version(owner)`, reloading when it moved. So a key
 * deleted or deactivated on one instance is never used by another once `bump` has resolved:
 * strict, not eventually true. Invalidation messages (`onInvalidate`) only free memory early.
 *
 * Versions are compared for equality only; they never repeat for an owner while a cache entry
 * could still hold them.
 */
export type CacheCoordinator = {
  /** The owner's current version (0 before any change). May throw or reject when the backend is down. */
  version(owner: string): Promise<number> | number;
  /** Records a change to the owner's keys; resolves once every instance's `version` shows it. */
  bump(owner: string): Promise<void>;
  /** Called with the owner whenever any instance bumps it (this one included). */
  onInvalidate(handler: (owner: string) => void): void;
  /** Stops delivering invalidations. Connections passed in stay open: their creator closes them. */
  close(): Promise<void>;
};
