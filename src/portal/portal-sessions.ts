import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import type { PortalGrant, PortalOpenRefusal, PortalSessionRepo, PortalSessionRow } from "../store/ports.js";

export type PortalSessionsDeps = {
  repo: PortalSessionRepo;
  clock: Clock;
  linkTtlSeconds: number;
  sessionTtlSeconds: number;
};

export type { PortalSessionRow };

export type CreatedLink = { token: string; expiresAt: string };

export type OpenedSession = { ok: true; sessionToken: string; session: PortalSessionRow } | ({ ok: false } & PortalOpenRefusal);

/** 256 random bits, base64url: neither a link nor a session token can be guessed. */
const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Links and sessions that ended more than a day ago are swept (a reused link still names its return URL until then). */
const SWEEP_AFTER_MS = 24 * 3600 * 1000;
/** Sweep at most this often per instance, on link creation. */
const SWEEP_EVERY_MS = 10 * 60 * 1000;

/** Only hashes are stored: a copy of the database opens no Settings page. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

/**
 * Portal links and the sessions they open. A link is one-time and short-lived; opening it starts
 * a session for the link's owner, identified by a random token (the cookie) and paired with a
 * CSRF token derived from it, so nothing else needs to be stored.
 */
export function createPortalSessions({ repo, clock, linkTtlSeconds, sessionTtlSeconds }: PortalSessionsDeps) {
  let lastSweepMs = 0;

  /** `ttlSeconds`: the link's lifetime; default the configured one (the development banner's link lasts longer). */
  async function createLink(grant: PortalGrant, ttlSeconds: number = linkTtlSeconds): Promise<CreatedLink> {
    const now = clock.now();
    if (now.getTime() - lastSweepMs > SWEEP_EVERY_MS) {
      lastSweepMs = now.getTime();
      await repo.sweep(new Date(now.getTime() - SWEEP_AFTER_MS).toISOString());
    }
    const token = randomBytes(TOKEN_BYTES).toString("base64url");
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
    await repo.insertLink({ ...grant, id: newId("ps", now.getTime()), linkHash: hashToken(token), createdAt: now.toISOString(), linkExpiresAt: expiresAt });
    return { token, expiresAt };
  }

  async function openLink(linkToken: string): Promise<OpenedSession> {
    if (!TOKEN_PATTERN.test(linkToken)) return { ok: false, reason: "unknown" };
    const now = clock.now();
    const sessionToken = randomBytes(TOKEN_BYTES).toString("base64url");
    const opened = await repo.open(hashToken(linkToken), {
      sessionHash: hashToken(sessionToken),
      at: now.toISOString(),
      sessionExpiresAt: new Date(now.getTime() + sessionTtlSeconds * 1000).toISOString(),
    });
    return opened.ok ? { ok: true, sessionToken, session: opened.session } : opened;
  }

  async function findSession(sessionToken: string): Promise<PortalSessionRow | undefined> {
    if (!TOKEN_PATTERN.test(sessionToken)) return undefined;
    return repo.findSession(hashToken(sessionToken), clock.now().toISOString());
  }

  async function endSession(sessionToken: string): Promise<void> {
    if (TOKEN_PATTERN.test(sessionToken)) await repo.deleteSession(hashToken(sessionToken));
  }

  return { createLink, openLink, findSession, endSession, csrfTokenFor, isCsrfTokenValid };
}

export type PortalSessions = ReturnType<typeof createPortalSessions>;

/**
 * The session's CSRF token: a one-way function of the session token, so the page can hold it
 * (it is not HttpOnly) without holding the session, and the server stores nothing more.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHash("sha256").update(`keyport-csrf\0${sessionToken}`, "utf8").digest("base64url");
}

export function isCsrfTokenValid(sessionToken: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const expected = Buffer.from(csrfTokenFor(sessionToken), "utf8");
  const actual = Buffer.from(presented, "utf8");
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The page a link opens, on the origin browsers reach Keyport at. */
export function portalLinkUrl(origin: string, linkToken: string): string {
  return `${origin}/portal/open/${linkToken}`;
}
