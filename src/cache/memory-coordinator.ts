import type { CacheCoordinator, ChangeTicket } from "./cache-coordinator.js";

/** Default for `maxOwners`. */
const DEFAULT_MAX_OWNERS = 100_000;

/** The single-instance coordinator: its `version` answers synchronously. */
export type MemoryCacheCoordinator = Omit<CacheCoordinator, "version"> & { version(owner: string): number };

/**
 * Versions kept in this process, for a single instance (SQLite mode). Every bump takes the next
 * value of one counter. `beginChange` has nothing to announce: the only cache is in this process,
 * and the version moved by `endChange` makes it drop whatever it loaded while the change ran.
 * Memory is bounded: past `maxOwners` (default 100 000) the least recently bumped owner is
 * forgotten and the floor every forgotten or unknown owner reports rises to its version, so no
 * owner's version ever goes back to a value a cache may hold (a forgotten owner only costs one
 * reload).
 */
export function createMemoryCacheCoordinator(options: { maxOwners?: number } = {}): MemoryCacheCoordinator {
  const maxOwners = options.maxOwners ?? DEFAULT_MAX_OWNERS;
  if (!Number.isSafeInteger(maxOwners) || maxOwners < 1) throw new Error("maxOwners must be a positive integer");
  // Map order is bump order: a bumped owner moves to the end.
  const versions = new Map<string, number>();
  const handlers: Array<(owner: string) => void> = [];
  let counter = 0;
  let floor = 0;

  let changes = 0;

  const coordinator: MemoryCacheCoordinator = {
    version(owner: string): number {
      return versions.get(owner) ?? floor;
    },
    async beginChange(owner: string): Promise<ChangeTicket> {
      changes += 1;
      return { owner, id: String(changes) };
    },
    endChange(ticket: ChangeTicket): Promise<void> {
      return coordinator.bump(ticket.owner);
    },
    async bump(owner: string): Promise<void> {
      counter += 1;
      versions.delete(owner);
      versions.set(owner, counter);
      if (versions.size > maxOwners) {
        const oldest = versions.entries().next();
        if (oldest.done !== true) {
          versions.delete(oldest.value[0]);
          floor = Math.max(floor, oldest.value[1]);
        }
      }
      for (const handler of [...handlers]) handler(owner);
    },
    onInvalidate(handler: (owner: string) => void): void {
      handlers.push(handler);
    },
    // Nothing can be missed inside one process.
    onInvalidateAll(): void {},
    async close(): Promise<void> {
      handlers.length = 0;
    },
  };
  return coordinator;
}
