import { isIPv6 } from "node:net";
import { type Clock, systemClock } from "../lib/clock.js";
import { unmapIPv4 } from "../lib/ip-address.js";
import type { RateLimiter } from "./ports.js";

/**
 * Tells every instance that an address is blocked, so none of them checks another of its tokens
 * until the block ends. `onBlock` handlers also hear this instance's own announcements.
 */
export type BlockBroadcast = {
  announce(addressKey: string, blockedForMs: number): Promise<void>;
  onBlock(handler: (addressKey: string, blockedForMs: number) => void): void;
  close(): Promise<void>;
};

/** What counting one failure found. */
export type FailureOutcome = {
  /** This failure was over the limit already (another instance reached it first). */
  overLimit: boolean;
  /** How long the address is now blocked; 0 when it is not. */
  blockedForMs: number;
};

/**
 * Failed authentications per client address. `blockedForMs` is a map lookup (no I/O, no promise),
 * asked before a token's signature is checked; `recordFailure` counts one failure (one Redis round
 * trip when the counter is shared), only after a token was refused. Successful authentications
 * never touch it.
 */
export type AuthFailureThrottle = {
  blockedForMs(address: string): number;
  recordFailure(address: string): Promise<FailureOutcome>;
  close(): Promise<void>;
};

export type AuthFailureThrottleOptions = {
  /** Counts failures per address key: `points` failures per window, then refuses. */
  failures: RateLimiter;
  /** Shares blocks between instances; omitted on a single instance. */
  broadcast?: BlockBroadcast;
  clock?: Clock;
  /** Blocked addresses remembered at most; default 100,000. */
  maxBlocked?: number;
};

const DEFAULT_MAX_BLOCKED = 100_000;

/**
 * Creates the throttle. Once an address has used up its failures for the window, it is blocked
 * until the window ends: every instance that hears of it (the one that counted the last failure,
 * and the others through `broadcast`) answers its next attempts before verifying anything. An
 * instance that missed the announcement learns of the block from the shared counter on the first
 * failure it counts itself.
 */
export function createAuthFailureThrottle(options: AuthFailureThrottleOptions): AuthFailureThrottle {
  const { failures, broadcast } = options;
  const clock = options.clock ?? systemClock;
  const maxBlocked = options.maxBlocked ?? DEFAULT_MAX_BLOCKED;
  /** Address key → the time (ms) its block ends. Insertion order is the order blocks began. */
  const blockedUntil = new Map<string, number>();

  function block(key: string, forMs: number): void {
    const until = clock.now().getTime() + forMs;
    if ((blockedUntil.get(key) ?? 0) >= until) return;
    blockedUntil.delete(key);
    if (blockedUntil.size >= maxBlocked) dropExpired();
    // Still full of live blocks: the oldest gives way (it ends first).
    if (blockedUntil.size >= maxBlocked) {
      const oldest = blockedUntil.keys().next();
      if (oldest.done !== true) blockedUntil.delete(oldest.value);
    }
    blockedUntil.set(key, until);
  }

  function dropExpired(): void {
    const now = clock.now().getTime();
    for (const [key, until] of blockedUntil) if (until <= now) blockedUntil.delete(key);
  }

  broadcast?.onBlock((key, forMs) => block(key, forMs));

  return {
    blockedForMs(address) {
      if (blockedUntil.size === 0) return 0;
      const key = addressKeyOf(address);
      const until = blockedUntil.get(key);
      if (until === undefined) return 0;
      const left = until - clock.now().getTime();
      if (left > 0) return left;
      blockedUntil.delete(key);
      return 0;
    },
    async recordFailure(address) {
      const key = addressKeyOf(address);
      const result = await failures.consume(key);
      if (result.allowed && result.remaining > 0) return { overLimit: false, blockedForMs: 0 };
      block(key, result.resetMs);
      // The failure that used up the allowance announces the block; one over it (the
      // announcement was missed here) has nothing new to tell.
      if (result.allowed) await broadcast?.announce(key, result.resetMs);
      return { overLimit: !result.allowed, blockedForMs: result.resetMs };
    },
    async close() {
      blockedUntil.clear();
      await broadcast?.close();
    },
  };
}

/**
 * The unit that is throttled: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a
 * whole /64, so single IPv6 addresses would cost an attacker nothing to change).
 */
export function addressKeyOf(address: string): string {
  const plain = unmapIPv4(address.replace(/%.*$/, ""));
  if (!isIPv6(plain)) return plain;
  const groups = expandIPv6(plain);
  return groups === undefined ? plain : `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] | undefined {
  const [head = "", tail, ...rest] = address.toLowerCase().split("::");
  if (rest.length > 0) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const toGroups = (parts: string[]) =>
    parts.flatMap((part) => {
      if (!part.includes(".")) return [part];
      // An embedded IPv4 address fills the last two groups.
      const bytes = part.split(".").map(Number);
      return [(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16), (((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16)];
    });
  const left = toGroups(parse(head));
  const right = tail === undefined ? [] : toGroups(parse(tail));
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  return [...left, ...Array<string>(missing).fill("0"), ...right].map((group) => Number.parseInt(group, 16).toString(16));
}
