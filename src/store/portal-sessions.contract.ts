import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newOwner } from "./fixtures.contract.js";
import type { NewPortalLink, Store } from "./ports.js";

const BASE = Date.parse("2025-06-01T12:00:00.000Z");
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString();

function newLink(overrides: Partial<NewPortalLink> = {}): NewPortalLink {
  const owner = newOwner();
  return {
    id: newId("ps"),
    linkHash: `link-${randomUUID()}`,
    owner,
    sub: owner.slice("user:".length),
    tier: "premium",
    returnUrl: "https://app.example.com/settings",
    theme: { mode: "dark", accentColor: "#0055ff", productName: "Acme" },
    createdAt: at(0),
    linkExpiresAt: at(300),
    ...overrides,
  };
}

const sessionAt = (seconds: number) => ({ sessionHash: `session-${randomUUID()}`, at: at(seconds), sessionExpiresAt: at(seconds + 3600) });

/**
 * Portal-session behaviour every `Store` must show. Registered inside the store contract, which
 * hands over a fresh store per test through `currentStore`.
 */
export function describePortalSessionContract(currentStore: () => Store): void {
  describe("portal sessions", () => {
    it("opens a link once and finds the session by its hash until it expires", async () => {
      const repo = currentStore().portalSessions;
      const link = newLink();
      await repo.insertLink(link);
      const session = sessionAt(10);
      const opened = await repo.open(link.linkHash, session);
      expect(opened).toEqual({
        ok: true,
        session: {
          id: link.id,
          owner: link.owner,
          sub: link.sub,
          tier: "premium",
          returnUrl: link.returnUrl,
          theme: link.theme,
          sessionExpiresAt: session.sessionExpiresAt,
        },
      });
      expect(await repo.findSession(session.sessionHash, at(20))).toMatchObject({ owner: link.owner, sub: link.sub });
      expect(await repo.findSession(session.sessionHash, session.sessionExpiresAt)).toBeUndefined();
      expect(await repo.findSession("session-unknown", at(20))).toBeUndefined();
    });

    it("refuses a second opening as used, with the link's return URL, and keeps the first session", async () => {
      const repo = currentStore().portalSessions;
      const link = newLink({ returnUrl: null });
      await repo.insertLink(link);
      const first = sessionAt(1);
      expect((await repo.open(link.linkHash, first)).ok).toBe(true);
      const second = sessionAt(2);
      expect(await repo.open(link.linkHash, second)).toEqual({ ok: false, reason: "used", returnUrl: null });
      expect(await repo.findSession(second.sessionHash, at(3))).toBeUndefined();
      expect(await repo.findSession(first.sessionHash, at(3))).toBeDefined();
    });

    it("refuses an expired link and an unknown one", async () => {
      const repo = currentStore().portalSessions;
      const link = newLink();
      await repo.insertLink(link);
      expect(await repo.open(link.linkHash, sessionAt(300))).toEqual({ ok: false, reason: "expired", returnUrl: link.returnUrl });
      expect(await repo.open("link-unknown", sessionAt(1))).toEqual({ ok: false, reason: "unknown" });
    });

    it("lets exactly one of many concurrent openings of one link win", async () => {
      const repo = currentStore().portalSessions;
      const link = newLink();
      await repo.insertLink(link);
      const results = await Promise.all(Array.from({ length: 12 }, (_, index) => repo.open(link.linkHash, sessionAt(index))));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(results.filter((result) => !result.ok && result.reason === "used")).toHaveLength(11);
    });

    it("deletes a session, and sweeps what ended before a time", async () => {
      const repo = currentStore().portalSessions;
      const ended = newLink({ linkExpiresAt: at(60) });
      const unopenedOld = newLink({ linkExpiresAt: at(60) });
      const live = newLink({ linkExpiresAt: at(100_000) });
      for (const link of [ended, unopenedOld, live]) await repo.insertLink(link);
      const endedSession = { sessionHash: `session-${randomUUID()}`, at: at(1), sessionExpiresAt: at(30) };
      expect((await repo.open(ended.linkHash, endedSession)).ok).toBe(true);
      const liveSession = sessionAt(5);
      expect((await repo.open(live.linkHash, liveSession)).ok).toBe(true);

      expect(await repo.sweep(at(1000))).toBe(2);
      expect(await repo.open(unopenedOld.linkHash, sessionAt(2))).toEqual({ ok: false, reason: "unknown" });
      expect(await repo.findSession(liveSession.sessionHash, at(10))).toBeDefined();

      expect(await repo.deleteSession(liveSession.sessionHash)).toBe(true);
      expect(await repo.deleteSession(liveSession.sessionHash)).toBe(false);
      expect(await repo.findSession(liveSession.sessionHash, at(10))).toBeUndefined();
    });
  });
}
