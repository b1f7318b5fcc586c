import { describe, expect, it } from "vitest";
import type { AuditEventType } from "../lib/domain.js";
import { newId } from "../lib/ids.js";
import { newOwner } from "./fixtures.contract.js";
import type { AuditEvent, ClaimedDelivery, Store } from "./ports.js";

const BASE_TIME = Date.parse("2025-06-01T00:00:00.000Z");

/** A fixed timestamp `seconds` after this suite's epoch. */
function at(seconds: number): string {
  return new Date(BASE_TIME + seconds * 1_000).toISOString();
}

function event(owner: string, type: AuditEventType, seconds = 0): AuditEvent {
  return {
    id: newId("evt", BASE_TIME + seconds * 1_000),
    owner,
    type,
    keyId: null,
    actor: "system",
    ip: null,
    userAgent: null,
    detail: { provider: "openai" },
    createdAt: at(seconds),
  };
}

const lease = (token: string, nowSeconds: number, limit = 100) => ({
  now: at(nowSeconds),
  leaseUntil: at(nowSeconds + 60),
  claimToken: token,
  limit,
});

const keysOf = (claimed: readonly ClaimedDelivery[]) => claimed.map(({ delivery }) => `${delivery.eventId}/${delivery.target}`).sort();

/**
 * The notification outbox and webhook secrets, on every dialect. Registered inside the store
 * contract, which hands over a fresh, empty store per test through `currentStore`.
 */
export function describeNotificationsContract(currentStore: () => Store): void {
  describe("notification outbox", () => {
    it("queues a notification event for its targets in the audit insert, and nothing for audit-only events", async () => {
      const store = currentStore();
      const owner = newOwner();
      const invalidated = event(owner, "key.invalidated", 1);
      const created = event(owner, "key.created", 2);
      await store.audit.insert(invalidated);
      await store.audit.insert(created);
      await store.audit.insert(event(owner, "key.tested", 3));
      await store.audit.insert(event(owner, "key.updated", 4));

      const claimed = await store.notifications.claimDue(lease("w1", 10));
      expect(keysOf(claimed)).toEqual(
        [`${invalidated.id}/email`, `${invalidated.id}/operator_webhook`, `${invalidated.id}/webhook`, `${created.id}/operator_webhook`, `${created.id}/webhook`].sort(),
      );
      const first = claimed.find(({ delivery }) => delivery.eventId === invalidated.id);
      expect(first?.event).toEqual(invalidated);
      expect(first?.delivery).toMatchObject({ state: "pending", attempts: 0, nextAttemptAt: invalidated.createdAt, lastError: null });
    });

    it("does not hand out a delivery before it is due", async () => {
      const store = currentStore();
      await store.audit.insert(event(newOwner(), "key.deleted", 100));
      expect(await store.notifications.claimDue(lease("w1", 99))).toEqual([]);
      expect(await store.notifications.claimDue(lease("w1", 100))).toHaveLength(2);
    });

    it("leases a delivery to one claimer until the lease runs out, then to the next", async () => {
      const store = currentStore();
      await store.audit.insert(event(newOwner(), "key.rotated", 0));
      expect(await store.notifications.claimDue(lease("w1", 1))).toHaveLength(2);
      expect(await store.notifications.claimDue(lease("w2", 30))).toEqual([]);
      const retaken = await store.notifications.claimDue(lease("w2", 62));
      expect(retaken.map(({ claimToken }) => claimToken)).toEqual(["w2", "w2"]);
    });

    it("hands each delivery to exactly one of many concurrent claimers", async () => {
      const store = currentStore();
      const owner = newOwner();
      const events = Array.from({ length: 20 }, (_, index) => event(owner, "key.activated", index));
      for (const each of events) await store.audit.insert(each);
      const claims = await Promise.all(Array.from({ length: 8 }, (_, index) => store.notifications.claimDue(lease(`w${index}`, 100, 7))));
      const all = claims.flatMap((claimed) => keysOf(claimed));
      // Leftovers (each claimer takes at most 7) go to later polls; none is handed out twice.
      expect(new Set(all).size).toBe(all.length);
      const rest = await store.notifications.claimDue(lease("late", 100));
      expect([...all, ...keysOf(rest)].sort()).toEqual(events.flatMap((each) => [`${each.id}/operator_webhook`, `${each.id}/webhook`]).sort());
    });

    it("records an outcome only under the claim that holds the lease", async () => {
      const store = currentStore();
      const owner = newOwner();
      const noted = event(owner, "key.no_credits", 0);
      await store.audit.insert(noted);
      await store.notifications.claimDue(lease("old", 1));
      // The lease ran out and another worker took the rows over.
      await store.notifications.claimDue(lease("new", 100));
      const outcome = { state: "delivered", at: at(101) } as const;
      expect(await store.notifications.finish(noted.id, "webhook", "old", outcome)).toBe(false);
      expect(await store.notifications.finish(noted.id, "webhook", "new", outcome)).toBe(true);
      expect(await store.notifications.finish(noted.id, "webhook", "new", outcome)).toBe(false);

      const [listed] = await store.notifications.listEvents(owner, { limit: 10 });
      expect(listed?.deliveries.find((delivery) => delivery.target === "webhook")).toEqual({
        eventId: noted.id,
        target: "webhook",
        state: "delivered",
        attempts: 1,
        nextAttemptAt: null,
        lastAttemptAt: at(101),
        lastError: null,
        deliveredAt: at(101),
        createdAt: noted.createdAt,
      });
    });

    it("reschedules a failed attempt, counts it, and finally gives up or skips", async () => {
      const store = currentStore();
      const owner = newOwner();
      const exceeded = event(owner, "budget.exceeded", 0);
      await store.audit.insert(exceeded);
      await store.notifications.claimDue(lease("w1", 1));
      await store.notifications.finish(exceeded.id, "webhook", "w1", { state: "pending", at: at(1), nextAttemptAt: at(6), error: "HTTP 503" });
      await store.notifications.finish(exceeded.id, "email", "w1", { state: "skipped", at: at(1), reason: "No notification email is set." });
      await store.notifications.finish(exceeded.id, "operator_webhook", "w1", { state: "failed", at: at(1), error: "HTTP 500" });

      expect(await store.notifications.claimDue(lease("w2", 5))).toEqual([]);
      const again = await store.notifications.claimDue(lease("w2", 6));
      expect(again.map(({ delivery }) => [delivery.target, delivery.attempts, delivery.lastError])).toEqual([["webhook", 1, "HTTP 503"]]);

      const [listed] = await store.notifications.listEvents(owner, { limit: 10 });
      expect(listed?.deliveries.map((delivery) => [delivery.target, delivery.state, delivery.attempts, delivery.lastError, delivery.nextAttemptAt])).toEqual([
        ["email", "skipped", 0, "No notification email is set.", null],
        ["operator_webhook", "failed", 1, "HTTP 500", null],
        ["webhook", "pending", 1, "HTTP 503", at(6)],
      ]);
    });

    it("gives back the leases of a stopping worker", async () => {
      const store = currentStore();
      await store.audit.insert(event(newOwner(), "key.created", 0));
      await store.notifications.claimDue(lease("stopping", 1));
      await store.notifications.release("stopping");
      expect(await store.notifications.claimDue(lease("next", 2))).toHaveLength(2);
    });

    it("lists only the owner's notification events, newest first, with a cursor", async () => {
      const store = currentStore();
      const owner = newOwner();
      const events = [event(owner, "key.created", 1), event(owner, "key.invalidated", 2), event(owner, "budget.threshold_reached", 3)];
      for (const each of events) await store.audit.insert(each);
      await store.audit.insert(event(owner, "key.tested", 4));
      await store.audit.insert(event(newOwner(), "key.created", 5));

      const page = await store.notifications.listEvents(owner, { limit: 2 });
      expect(page.map(({ event: listed }) => listed.id)).toEqual([events[2]?.id, events[1]?.id]);
      expect(page[0]?.deliveries.map((delivery) => delivery.target)).toEqual(["email", "operator_webhook", "webhook"]);
      expect(page[0]?.event).toEqual(events[2]);
      const next = await store.notifications.listEvents(owner, { before: events[1]?.id ?? "", limit: 2 });
      expect(next.map(({ event: listed }) => listed.id)).toEqual([events[0]?.id]);
      expect(await store.notifications.listEvents(owner, { limit: 0 })).toEqual([]);
      expect(await store.notifications.listEvents(newOwner(), { limit: 10 })).toEqual([]);
    });
  });

  describe("webhook secrets", () => {
    it("keeps the first of several concurrent inserts", async () => {
      const store = currentStore();
      const owner = newOwner();
      const rows = await Promise.all(
        Array.from({ length: 5 }, (_, index) => store.webhookSecrets.insertIfAbsent({ owner, sealed: `sealed-${index}`, createdAt: at(index) })),
      );
      expect(new Set(rows.map((row) => row.sealed)).size).toBe(1);
      expect(await store.webhookSecrets.find(owner)).toEqual(rows[0]);
      expect(await store.webhookSecrets.find(newOwner())).toBeUndefined();
    });

    it("rotates atomically, keeping the replaced secret as the previous one", async () => {
      const store = currentStore();
      const owner = newOwner();
      await store.webhookSecrets.insertIfAbsent({ owner, sealed: "first", createdAt: at(0) });
      const rotated = await store.webhookSecrets.rotate(owner, { sealed: "second", at: at(10), previousExpiresAt: at(100) });
      expect(rotated).toEqual({ owner, sealed: "second", previousSealed: "first", previousExpiresAt: at(100), createdAt: at(0), rotatedAt: at(10) });
      expect(await store.webhookSecrets.find(owner)).toEqual(rotated);
      expect(await store.webhookSecrets.rotate(newOwner(), { sealed: "x", at: at(10), previousExpiresAt: at(100) })).toBeUndefined();
    });
  });
}
