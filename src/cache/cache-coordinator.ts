/**
 * Keeps the key-record caches of every instance honest. Each owner has a version that changes
 * whenever anything about the owner's keys changes; a cache remembers the version it loaded an
 * entry at and, on every read, compares it with `version(owner)`, reloading when it moved.
 *
 * A change is bracketed: `beginChange` before it commits, `endChange` after. Between the two the
 * owner's version reads as `undefined` ("cache nothing about this owner"), so no instance can
 * cache the record as it was before the commit and keep serving it after. When `beginChange`
 * cannot reach the backend the change must not go ahead (the caller refuses it, or falls back to
 * `bump` for changes that may not be refused). Invalidation messages (`onInvalidate`) only free
 * memory early; `onInvalidateAll` says that messages may have been missed, so nothing cached
 * before can be trusted.
 *
 * Versions are compared for equality only; they never repeat for an owner while a cache entry
 * could still hold them.
 */
export type CacheCoordinator = {
  /**
   * The owner's current version (0 before any change), or `undefined` while nothing about the
   * owner may be cached: a change is in progress, or this instance is not receiving
   * invalidations. May throw or reject when the backend is down.
   */
  version(owner: string): Promise<number | undefined> | number | undefined;
  /**
   * Announces a change about to commit: until `endChange(ticket)`, every instance's `version`
   * reads `undefined` for the owner. Rejects when the backend cannot record it; then nothing was
   * announced and the change must not be made.
   */
  beginChange(owner: string): Promise<ChangeTicket>;
  /**
   * The change has committed (or failed): moves the version once more and lets instances cache
   * the owner again. Idempotent, so a failed attempt can be retried.
   */
  endChange(ticket: ChangeTicket): Promise<void>;
  /** Records a change made without `beginChange`; moves the version. */
  bump(owner: string): Promise<void>;
  /** Called with the owner whenever any instance changes it (this one included). */
  onInvalidate(handler: (owner: string) => void): void;
  /**
   * Called when invalidations may have been missed (the subscription was lost, or came back): every
   * cached entry and every load in flight must be dropped.
   */
  onInvalidateAll(handler: () => void): void;
  /** Stops delivering invalidations. Connections passed in stay open: their creator closes them. */
  close(): Promise<void>;
};

/** Names one announced change, for `endChange`. */
export type ChangeTicket = { readonly owner: string; readonly id: string };
