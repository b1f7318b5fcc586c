import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newKey, newOwner } from "./fixtures.contract.js";
import type { AuditEvent, NewProviderKey, ProviderKeyRow, Store } from "./ports.js";
import { describeNotificationsContract } from "./notifications.contract.js";
import { describeBudgetContract } from "./budgets.contract.js";
import { describePortalSessionContract } from "./portal-sessions.contract.js";
import { describeUsageSummaryContract } from "./usage-summary.contract.js";
import { describeUsageContract } from "./usage.contract.js";

/**
 * The behaviour every `Store` must show, whatever the database. Each test gets a fresh, empty
 * store from `createStore` (global reads such as `countByKid` expect no other rows) and closes
 * it afterwards; `cleanup` runs once after the suite.
 */
export function runStoreContract(name: string, createStore: () => Promise<Store>, cleanup?: () => Promise<void>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await createStore();
    });
    afterEach(async () => {
      await store.close();
    });
    if (cleanup !== undefined) afterAll(cleanup);

    describe("keys", () => {
      it("round-trips every field, with booleans and numbers as JS values", async () => {
        const key = newKeyAt(newOwner(), { monthlyLimitNanoUsd: 5_000_000_000_000, lastTestedAt: time(1), statusDetail: "ok" });
        expect(await store.keys.insert(key, { activate: true, at: time(2) })).toEqual({ ok: true });
        const row = await store.keys.findById(key.owner, key.id);
        expect(row).toEqual(storedRow(key, { isActive: true, at: time(2) }));
        expect(typeof row?.isActive).toBe("boolean");
        expect(typeof row?.totalRequests).toBe("number");
      });

      it("inserting an active key deactivates the owner's other keys of that provider only", async () => {
        const owner = newOwner();
        const other = newOwner();
        const old = newKeyAt(owner);
        const anthropic = newKeyAt(owner, { provider: "anthropic" });
        const othersKey = newKeyAt(other);
        for (const key of [old, anthropic, othersKey]) await store.keys.insert(key, { activate: true, at: time(1) });
        const next = newKeyAt(owner);
        expect(await store.keys.insert(next, { activate: true, at: time(2) })).toEqual({ ok: true });

        expect(await store.keys.findById(owner, old.id)).toMatchObject({ isActive: false, updatedAt: time(2) });
        expect(await store.keys.findById(owner, anthropic.id)).toMatchObject({ isActive: true, updatedAt: time(1) });
        expect(await store.keys.findById(other, othersKey.id)).toMatchObject({ isActive: true });
        expect((await store.keys.findActive(owner, "openai"))?.id).toBe(next.id);
      });

      it("inserting an inactive key leaves the active one alone", async () => {
        const owner = newOwner();
        const active = newKeyAt(owner);
        await store.keys.insert(active, { activate: true, at: time(1) });
        await store.keys.insert(newKeyAt(owner), { activate: false, at: time(2) });
        expect((await store.keys.findActive(owner, "openai"))?.id).toBe(active.id);
      });

      it("reports a duplicate fingerprint of the same owner with the existing id and changes nothing", async () => {
        const owner = newOwner();
        const first = newKeyAt(owner, { fingerprint: "fp-shared" });
        await store.keys.insert(first, { activate: true, at: time(1) });
        const second = newKeyAt(owner, { fingerprint: "fp-shared" });
        expect(await store.keys.insert(second, { activate: true, at: time(2) })).toEqual({ ok: false, reason: "duplicate", existingId: first.id });
        expect(await store.keys.findById(owner, second.id)).toBeUndefined();
        // The failed activating insert rolled back its deactivation too.
        expect(await store.keys.findById(owner, first.id)).toEqual(storedRow(first, { isActive: true, at: time(1) }));
      });

      it("accepts the same fingerprint for another owner", async () => {
        await store.keys.insert(newKeyAt(newOwner(), { fingerprint: "fp-same" }), { activate: true, at: time(1) });
        const other = newKeyAt(newOwner(), { fingerprint: "fp-same" });
        expect(await store.keys.insert(other, { activate: true, at: time(1) })).toEqual({ ok: true });
        expect((await store.keys.findByFingerprint(other.owner, "fp-same"))?.id).toBe(other.id);
      });

      it("lets exactly one of several parallel inserts of one fingerprint win", async () => {
        const owner = newOwner();
        const keys = Array.from({ length: 10 }, (_, index) => newKeyAt(owner, { fingerprint: "fp-race", label: `k${index}` }));
        const results = await Promise.all(keys.map((key, index) => store.keys.insert(key, { activate: index % 2 === 0, at: time(1) })));
        const winners = keys.filter((_, index) => results[index]?.ok === true);
        expect(winners).toHaveLength(1);
        const winnerId = winners[0]?.id;
        for (const result of results) if (!result.ok) expect(result).toEqual({ ok: false, reason: "duplicate", existingId: winnerId });
        expect(await store.keys.list(owner)).toHaveLength(1);
      });

      it("rejects a reused id instead of calling it a duplicate", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: false, at: time(1) });
        await expect(store.keys.insert({ ...key, fingerprint: "fp-other" }, { activate: false, at: time(1) })).rejects.toThrow();
      });

      it("finds by fingerprint within the owner only", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: false, at: time(1) });
        expect((await store.keys.findByFingerprint(key.owner, key.fingerprint))?.id).toBe(key.id);
        expect(await store.keys.findByFingerprint(newOwner(), key.fingerprint)).toBeUndefined();
        expect(await store.keys.findByFingerprint(key.owner, "fp-unknown")).toBeUndefined();
      });

      it("lists the owner's keys newest first, optionally by provider", async () => {
        const owner = newOwner();
        const keys = [
          newKeyAt(owner, { createdAt: time(1) }),
          newKeyAt(owner, { createdAt: time(3), provider: "anthropic" }),
          newKeyAt(owner, { createdAt: time(2) }),
        ];
        for (const key of keys) await store.keys.insert(key, { activate: false, at: time(4) });
        await store.keys.insert(newKeyAt(newOwner()), { activate: false, at: time(4) });
        expect((await store.keys.list(owner)).map((row) => row.createdAt)).toEqual([time(3), time(2), time(1)]);
        expect((await store.keys.list(owner, "openai")).map((row) => row.createdAt)).toEqual([time(2), time(1)]);
        expect(await store.keys.list(newOwner())).toEqual([]);
      });

      it("updates label and limit, clears the limit with null and keeps what the patch omits", async () => {
        const key = newKeyAt(newOwner(), { monthlyLimitNanoUsd: 1_000 });
        await store.keys.insert(key, { activate: true, at: time(1) });
        expect(await store.keys.update(key.owner, key.id, { label: "Renamed" }, time(2))).toMatchObject({
          label: "Renamed",
          monthlyLimitNanoUsd: 1_000,
          updatedAt: time(2),
          isActive: true,
        });
        expect(await store.keys.update(key.owner, key.id, { monthlyLimitNanoUsd: null }, time(3))).toMatchObject({
          label: "Renamed",
          monthlyLimitNanoUsd: null,
        });
        expect(await store.keys.update(key.owner, "key_missing", { label: "x" }, time(3))).toBeUndefined();
      });

      it("activates one key and deactivates the owner's other keys of that provider", async () => {
        const owner = newOwner();
        const first = newKeyAt(owner);
        const second = newKeyAt(owner);
        const anthropic = newKeyAt(owner, { provider: "anthropic" });
        await store.keys.insert(first, { activate: true, at: time(1) });
        await store.keys.insert(second, { activate: false, at: time(1) });
        await store.keys.insert(anthropic, { activate: true, at: time(1) });

        expect(await store.keys.activate(owner, second.id, time(2))).toMatchObject({ id: second.id, isActive: true, updatedAt: time(2) });
        expect(await store.keys.findById(owner, first.id)).toMatchObject({ isActive: false, updatedAt: time(2) });
        expect(await store.keys.findById(owner, anthropic.id)).toMatchObject({ isActive: true, updatedAt: time(1) });
        expect(await store.keys.activate(owner, second.id, time(3))).toMatchObject({ isActive: true });
        expect(await store.keys.activate(owner, "key_missing", time(3))).toBeUndefined();
        expect((await store.keys.findActive(owner, "openai"))?.id).toBe(second.id);
      });

      it("leaves exactly one active key after 20 parallel activations", async () => {
        const owner = newOwner();
        const keys = Array.from({ length: 20 }, () => newKeyAt(owner));
        for (const key of keys) await store.keys.insert(key, { activate: false, at: time(1) });
        const results = await Promise.all(keys.map((key) => store.keys.activate(owner, key.id, time(2))));
        for (const result of results) expect(result?.isActive).toBe(true);
        const active = (await store.keys.list(owner)).filter((row) => row.isActive);
        expect(active).toHaveLength(1);
        expect((await store.keys.findActive(owner, "openai"))?.id).toBe(active[0]?.id);
      });

      it("deactivates a key", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: true, at: time(1) });
        expect(await store.keys.deactivate(key.owner, key.id, time(2))).toMatchObject({ isActive: false, updatedAt: time(2) });
        expect(await store.keys.findActive(key.owner, "openai")).toBeUndefined();
      });

      it("records a status change, its detail and the test time; a repeated status keeps its change time", async () => {
        const key = newKeyAt(newOwner(), { lastTestedAt: time(0) });
        await store.keys.insert(key, { activate: true, at: time(1) });
        const invalid = await store.keys.setStatus(key.owner, key.id, { status: "invalid", statusDetail: "401", at: time(2), testedAt: time(2) });
        expect(invalid).toMatchObject({
          status: "invalid",
          statusDetail: "401",
          statusChangedAt: time(2),
          lastTestedAt: time(2),
          updatedAt: time(2),
        });
        const again = await store.keys.setStatus(key.owner, key.id, { status: "invalid", statusDetail: "401 again", at: time(3) });
        expect(again).toMatchObject({ statusDetail: "401 again", statusChangedAt: time(2), lastTestedAt: time(2), updatedAt: time(3) });
        expect(await store.keys.setStatus(key.owner, key.id, { status: "valid", statusDetail: null, at: time(4) })).toMatchObject({
          status: "valid",
          statusDetail: null,
          statusChangedAt: time(4),
          isActive: true,
        });
      });

      it("changes a status only once under onlyIfDifferent: of concurrent identical changes exactly one gets the row", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: true, at: time(1) });
        const change = { status: "invalid" as const, statusDetail: "revoked", at: time(2), onlyIfDifferent: true };
        const results = await Promise.all(Array.from({ length: 20 }, () => store.keys.setStatus(key.owner, key.id, change)));
        expect(results.filter((row) => row !== undefined)).toHaveLength(1);
        expect(await store.keys.findById(key.owner, key.id)).toMatchObject({ status: "invalid", statusDetail: "revoked", statusChangedAt: time(2) });
        expect(await store.keys.setStatus(key.owner, key.id, { ...change, statusDetail: "again", at: time(3) })).toBeUndefined();
        expect(await store.keys.findById(key.owner, key.id)).toMatchObject({ statusDetail: "revoked", updatedAt: time(2) });
      });

      it("replaces the secret in place", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: true, at: time(1) });
        const result = await store.keys.replaceSecret(key.owner, key.id, {
          ciphertext: "ct-new",
          keyHint: "****...new1",
          fingerprint: "fp-new",
          status: "unverified",
          statusDetail: "provider unreachable",
          at: time(2),
          testedAt: null,
        });
        const expected = {
          ...storedRow(key, { isActive: true, at: time(1) }),
          ciphertext: "ct-new",
          keyHint: "****...new1",
          fingerprint: "fp-new",
          status: "unverified",
          statusDetail: "provider unreachable",
          statusChangedAt: time(2),
          lastTestedAt: null,
          updatedAt: time(2),
        };
        expect(result).toEqual({ ok: true, row: expected });
        expect(await store.keys.findById(key.owner, key.id)).toEqual(expected);
        expect(await store.keys.findByFingerprint(key.owner, key.fingerprint)).toBeUndefined();
      });

      it("refuses to replace a secret with another key's fingerprint, and allows its own", async () => {
        const owner = newOwner();
        const first = newKeyAt(owner);
        const second = newKeyAt(owner);
        await store.keys.insert(first, { activate: true, at: time(1) });
        await store.keys.insert(second, { activate: false, at: time(1) });
        const replacement = { ciphertext: "ct-x", keyHint: "h", status: "valid", statusDetail: null, at: time(2), testedAt: time(2) } as const;
        expect(await store.keys.replaceSecret(owner, second.id, { ...replacement, fingerprint: first.fingerprint })).toEqual({
          ok: false,
          reason: "duplicate",
          existingId: first.id,
        });
        expect(await store.keys.findById(owner, second.id)).toEqual(storedRow(second, { isActive: false, at: time(1) }));
        const same = await store.keys.replaceSecret(owner, second.id, { ...replacement, fingerprint: second.fingerprint });
        expect(same).toMatchObject({ ok: true, row: { ciphertext: "ct-x", fingerprint: second.fingerprint } });
      });

      it("deletes a key and reports whether it existed", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: true, at: time(1) });
        expect(await store.keys.delete(key.owner, key.id)).toBe(true);
        expect(await store.keys.findById(key.owner, key.id)).toBeUndefined();
        expect(await store.keys.delete(key.owner, key.id)).toBe(false);
        // The fingerprint is free again.
        expect(await store.keys.insert(newKeyAt(key.owner, { fingerprint: key.fingerprint }), { activate: true, at: time(2) })).toEqual({ ok: true });
      });

      it("treats another owner's key id exactly like a missing one", async () => {
        const key = newKeyAt(newOwner());
        await store.keys.insert(key, { activate: true, at: time(1) });
        const intruder = newOwner();
        expect(await store.keys.findById(intruder, key.id)).toBeUndefined();
        expect(await store.keys.update(intruder, key.id, { label: "x", monthlyLimitNanoUsd: 1 }, time(2))).toBeUndefined();
        expect(await store.keys.activate(intruder, key.id, time(2))).toBeUndefined();
        expect(await store.keys.deactivate(intruder, key.id, time(2))).toBeUndefined();
        const change = { status: "invalid", statusDetail: "x", at: time(2), testedAt: time(2) } as const;
        expect(await store.keys.setStatus(intruder, key.id, change)).toBeUndefined();
        const replacement = {
          ciphertext: "ct-x",
          keyHint: "h",
          fingerprint: "fp-x",
          status: "valid",
          statusDetail: null,
          at: time(2),
          testedAt: null,
        } as const;
        expect(await store.keys.replaceSecret(intruder, key.id, replacement)).toEqual({ ok: true });
        expect(await store.keys.delete(intruder, key.id)).toBe(false);
        expect(await store.keys.findById(key.owner, key.id)).toEqual(storedRow(key, { isActive: true, at: time(1) }));
        expect(await store.keys.findActive(intruder, "openai")).toBeUndefined();
      });
    });

    describe("audit events written with a key change", () => {
      const typesOf = async (owner: string) => (await store.audit.list(owner, { limit: 50 })).map((event) => event.detail.step);
      const replacement = { ciphertext: "ct-r", keyHint: "h", fingerprint: "fp-rotated", status: "valid", statusDetail: null, at: time(3), testedAt: null } as const;

      it("stores each write's events with it", async () => {
        const owner = newOwner();
        const key = newKeyAt(owner);
        const other = newKeyAt(owner);
        let step = 0;
        const events = () => [{ ...newEvent(owner, (step += 1)), detail: { step } }];
        expect(await store.keys.insert(key, { activate: true, at: time(1) }, events())).toEqual({ ok: true });
        expect(await store.keys.insert(other, { activate: false, at: time(1) }, events())).toEqual({ ok: true });
        expect(await store.keys.update(owner, key.id, { label: "x" }, time(2), events())).toBeDefined();
        expect(await store.keys.activate(owner, other.id, time(2), events())).toBeDefined();
        expect(await store.keys.deactivate(owner, other.id, time(2), events())).toBeDefined();
        expect(await store.keys.setStatus(owner, key.id, { status: "invalid", statusDetail: "x", at: time(3) }, events())).toBeDefined();
        expect(await store.keys.replaceSecret(owner, key.id, replacement, events())).toMatchObject({ ok: true, row: { id: key.id } });
        expect(await store.keys.delete(owner, key.id, events())).toBe(true);
        expect((await typesOf(owner)).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      });

      it("makes no change when its event cannot be stored", async () => {
        const owner = newOwner();
        const key = newKeyAt(owner);
        await store.keys.insert(key, { activate: true, at: time(1) });
        const stored = newEvent(owner, 1);
        await store.audit.insert(stored);
        // An event whose id is taken cannot be written: the delete must roll back with it.
        await expect(store.keys.delete(owner, key.id, [stored])).rejects.toThrow();
        await expect(store.keys.deactivate(owner, key.id, time(2), [stored])).rejects.toThrow();
        expect(await store.keys.findById(owner, key.id)).toEqual(storedRow(key, { isActive: true, at: time(1) }));
      });

      it("stores none when the write finds no key, or fails", async () => {
        const owner = newOwner();
        const key = newKeyAt(owner, { fingerprint: "fp-held" });
        await store.keys.insert(key, { activate: true, at: time(1) });
        const event = () => [{ ...newEvent(owner, 1), detail: { step: "should not be stored" } }];
        expect(await store.keys.update(owner, "key_missing", { label: "x" }, time(2), event())).toBeUndefined();
        expect(await store.keys.activate(owner, "key_missing", time(2), event())).toBeUndefined();
        expect(await store.keys.deactivate(owner, "key_missing", time(2), event())).toBeUndefined();
        expect(await store.keys.setStatus(owner, "key_missing", { status: "invalid", statusDetail: null, at: time(2) }, event())).toBeUndefined();
        expect(await store.keys.replaceSecret(owner, "key_missing", replacement, event())).toEqual({ ok: true });
        expect(await store.keys.delete(owner, "key_missing", event())).toBe(false);
        // A duplicate (the unique index refuses it inside the transaction) and a reused id.
        expect(await store.keys.insert(newKeyAt(owner, { fingerprint: "fp-held" }), { activate: true, at: time(2) }, event())).toMatchObject({ ok: false });
        await expect(store.keys.insert({ ...key, fingerprint: "fp-new" }, { activate: false, at: time(2) }, event())).rejects.toThrow();
        const other = newKeyAt(owner);
        await store.keys.insert(other, { activate: false, at: time(2) });
        expect(await store.keys.replaceSecret(owner, other.id, { ...replacement, fingerprint: "fp-held" }, event())).toMatchObject({ ok: false });
        expect(await store.audit.list(owner, { limit: 10 })).toEqual([]);
      });
    });

    describe("data keys", () => {
      it("stores one data key per owner and returns the stored one on later inserts", async () => {
        const owner = newOwner();
        expect(await store.dataKeys.find(owner)).toBeUndefined();
        const first = { owner, kid: "kid-a", wrapped: "wrapped-1", createdAt: time(1), updatedAt: time(1) };
        expect(await store.dataKeys.insertIfAbsent(first)).toEqual(first);
        expect(await store.dataKeys.insertIfAbsent({ ...first, wrapped: "wrapped-2", createdAt: time(2) })).toEqual(first);
        expect(await store.dataKeys.find(owner)).toEqual(first);
      });

      it("gives every racing first insert the same data key", async () => {
        const owner = newOwner();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, index) =>
            store.dataKeys.insertIfAbsent({ owner, kid: "kid-a", wrapped: `w-${index}`, createdAt: time(1), updatedAt: time(1) }),
          ),
        );
        expect(new Set(results.map((row) => row?.wrapped)).size).toBe(1);
        expect(results[0]).toBeDefined();
        expect(await store.dataKeys.find(owner)).toEqual(results[0]);
      });

      it("never makes a data key for an owner whose stored provider keys were sealed with another", async () => {
        const owner = newOwner();
        const other = newOwner();
        // The owner's keys are stored, their data-key row is gone (a partial restore).
        await store.keys.insert(newKeyAt(owner), { activate: true, at: time(1) });
        const fresh = { owner, kid: "kid-a", wrapped: "w-new", createdAt: time(2), updatedAt: time(2) };
        expect(await store.dataKeys.insertIfAbsent(fresh)).toBeUndefined();
        expect(await store.dataKeys.find(owner)).toBeUndefined();
        expect(await store.dataKeys.countByKid()).toEqual({});
        // Another owner's keys do not stand in the way.
        const othersRow = { ...fresh, owner: other };
        expect(await store.dataKeys.insertIfAbsent(othersRow)).toEqual(othersRow);
        // Once the owner's keys are deleted, the owner may start over with a new data key.
        for (const row of await store.keys.list(owner)) await store.keys.delete(owner, row.id);
        expect(await store.dataKeys.insertIfAbsent(fresh)).toEqual(fresh);
      });

      it("returns the stored data key to an owner who has one, stored keys or not", async () => {
        const owner = newOwner();
        const first = { owner, kid: "kid-a", wrapped: "w-1", createdAt: time(1), updatedAt: time(1) };
        expect(await store.dataKeys.insertIfAbsent(first)).toEqual(first);
        await store.keys.insert(newKeyAt(owner), { activate: true, at: time(2) });
        expect(await store.dataKeys.insertIfAbsent({ ...first, wrapped: "w-2", createdAt: time(3) })).toEqual(first);
      });

      it("pages through keys not wrapped by a kid, ordered by owner", async () => {
        const stale = ["user:e", "user:a", "user:c", "user:d", "user:b"];
        for (const owner of stale) {
          await store.dataKeys.insertIfAbsent({ owner, kid: "old", wrapped: `w-${owner}`, createdAt: time(1), updatedAt: time(1) });
        }
        await store.dataKeys.insertIfAbsent({ owner: "user:aa", kid: "new", wrapped: "w", createdAt: time(1), updatedAt: time(1) });
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.dataKeys.listNotWrappedBy("new", after, 2);
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(2);
          seen.push(...page.map((row) => row.owner));
          after = page.at(-1)?.owner;
        }
        expect(seen).toEqual(["user:a", "user:b", "user:c", "user:d", "user:e"]);
        expect(await store.dataKeys.listNotWrappedBy("new", undefined, 0)).toEqual([]);
        expect(await store.dataKeys.listNotWrappedBy("new", undefined, -1)).toEqual([]);
      });

      it("rewraps only when the wrapping is still the expected one", async () => {
        const owner = newOwner();
        await store.dataKeys.insertIfAbsent({ owner, kid: "old", wrapped: "w-old", createdAt: time(1), updatedAt: time(1) });
        expect(await store.dataKeys.rewrap(owner, "w-stale", { kid: "new", wrapped: "w-x", at: time(2) })).toBe(false);
        expect(await store.dataKeys.rewrap(owner, "w-old", { kid: "new", wrapped: "w-new", at: time(2) })).toBe(true);
        expect(await store.dataKeys.rewrap(owner, "w-old", { kid: "newer", wrapped: "w-y", at: time(3) })).toBe(false);
        expect(await store.dataKeys.rewrap(newOwner(), "w-new", { kid: "x", wrapped: "w-z", at: time(3) })).toBe(false);
        expect(await store.dataKeys.find(owner)).toEqual({ owner, kid: "new", wrapped: "w-new", createdAt: time(1), updatedAt: time(2) });
      });

      it("counts data keys per kid", async () => {
        expect(await store.dataKeys.countByKid()).toEqual({});
        for (const [owner, kid] of [["user:a", "k1"], ["user:b", "k1"], ["user:c", "k2"]] as const) {
          await store.dataKeys.insertIfAbsent({ owner, kid, wrapped: `w-${owner}`, createdAt: time(1), updatedAt: time(1) });
        }
        expect(await store.dataKeys.countByKid()).toEqual({ k1: 2, k2: 1 });
      });
    });

    describe("master keys", () => {
      it("records each kid once and lists them oldest first", async () => {
        expect(await store.masterKeys.list()).toEqual([]);
        await store.masterKeys.insert({ kid: "k2", verifier: "v2", createdAt: time(2) });
        await store.masterKeys.insert({ kid: "k1", verifier: "v1", createdAt: time(1) });
        await store.masterKeys.insert({ kid: "k1", verifier: "other", createdAt: time(3) });
        expect(await store.masterKeys.list()).toEqual([
          { kid: "k1", verifier: "v1", createdAt: time(1) },
          { kid: "k2", verifier: "v2", createdAt: time(2) },
        ]);
      });
    });

    describe("audit", () => {
      it("lists the owner's events newest first with a cursor and a limit", async () => {
        const owner = newOwner();
        const events = Array.from({ length: 5 }, (_, index) => newEvent(owner, index));
        for (const event of [...events].reverse()) await store.audit.insert(event);
        await store.audit.insert(newEvent(newOwner(), 9));
        const newestFirst = [...events].reverse();
        expect(await store.audit.list(owner, { limit: 10 })).toEqual(newestFirst);
        expect(await store.audit.list(owner, { limit: 2 })).toEqual(newestFirst.slice(0, 2));
        expect(await store.audit.list(owner, { before: newestFirst[1]?.id ?? "", limit: 2 })).toEqual(newestFirst.slice(2, 4));
        expect(await store.audit.list(owner, { before: events[0]?.id ?? "", limit: 2 })).toEqual([]);
        expect(await store.audit.list(owner, { limit: 0 })).toEqual([]);
        expect(await store.audit.list(owner, { limit: -5 })).toEqual([]);
        expect(await store.audit.list(newOwner(), { limit: 10 })).toEqual([]);
      });

      it("round-trips nested detail and null fields", async () => {
        const owner = newOwner();
        const event: AuditEvent = {
          ...newEvent(owner, 0),
          keyId: null,
          ip: null,
          userAgent: null,
          detail: { provider: "openai", nested: { count: 2, flags: [true, null, "x"] }, quote: "a\"b'c" },
        };
        await store.audit.insert(event);
        expect(await store.audit.list(owner, { limit: 1 })).toEqual([event]);
      });
    });

    describe("idempotency", () => {
      it("claims once, reports the running and then the completed request, and releases", async () => {
        const owner = newOwner();
        const record = { owner, key: "idem-1", requestHash: "hash-1", createdAt: time(1) };
        expect(await store.idempotency.claim(record)).toEqual({ claimed: true });
        expect(await store.idempotency.claim({ ...record, requestHash: "hash-2", createdAt: time(2) })).toEqual({
          claimed: false,
          existing: { ...record, statusCode: null, responseBody: null },
        });
        await store.idempotency.complete(owner, "idem-1", 201, '{"id":"key_1"}');
        expect(await store.idempotency.claim(record)).toEqual({
          claimed: false,
          existing: { ...record, statusCode: 201, responseBody: '{"id":"key_1"}' },
        });
        expect(await store.idempotency.claim({ ...record, owner: newOwner() })).toEqual({ claimed: true });
        await store.idempotency.release(owner, "idem-1");
        expect(await store.idempotency.claim({ ...record, createdAt: time(3) })).toEqual({ claimed: true });
      });

      it("lets exactly one of several parallel claims win", async () => {
        const owner = newOwner();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, index) =>
            store.idempotency.claim({ owner, key: "idem-race", requestHash: `h${index}`, createdAt: time(1) }),
          ),
        );
        expect(results.filter((result) => result.claimed)).toHaveLength(1);
      });

      it("expires records created before the cut-off only", async () => {
        const owner = newOwner();
        await store.idempotency.claim({ owner, key: "old-1", requestHash: "h", createdAt: time(1) });
        await store.idempotency.claim({ owner, key: "old-2", requestHash: "h", createdAt: time(2) });
        await store.idempotency.claim({ owner, key: "new", requestHash: "h", createdAt: time(5) });
        expect(await store.idempotency.expire(time(5))).toBe(2);
        expect(await store.idempotency.expire(time(5))).toBe(0);
        expect(await store.idempotency.claim({ owner, key: "old-1", requestHash: "h", createdAt: time(6) })).toEqual({ claimed: true });
        expect(await store.idempotency.claim({ owner, key: "new", requestHash: "h", createdAt: time(6) })).toMatchObject({ claimed: false });
      });
    });

    describeUsageContract(() => store);
    describeUsageSummaryContract(() => store);
    describeNotificationsContract(() => store);
    describePortalSessionContract(() => store);
    describeBudgetContract(() => store);

    describe("lifecycle", () => {
      it("answers ping and closes idempotently; a closed store refuses work", async () => {
        expect(["sqlite", "postgres"]).toContain(store.dialect);
        await expect(store.ping()).resolves.toBeUndefined();
        await store.close();
        await expect(store.close()).resolves.toBeUndefined();
        await expect(store.ping()).rejects.toThrow();
      });
    });
  });
}

const BASE_TIME = Date.parse("2025-01-01T00:00:00.000Z");

/** A fixed timestamp `minutes` after the test epoch. */
function time(minutes: number): string {
  return new Date(BASE_TIME + minutes * 60_000).toISOString();
}



/** What the store holds right after `insert(key, { at })`. */
function storedRow(key: NewProviderKey, state: { isActive: boolean; at: string }): ProviderKeyRow {
  return {
    ...key,
    isActive: state.isActive,
    statusChangedAt: state.at,
    updatedAt: state.at,
    lastUsedAt: null,
    totalRequests: 0,
    totalTokens: 0,
    costNanoUsd: 0,
  };
}

function newEvent(owner: string, index: number): AuditEvent {
  return {
    id: newId("evt", BASE_TIME + index * 1_000),
    owner,
    type: "key.created",
    keyId: newId("key"),
    actor: "user-1",
    ip: "203.0.113.7",
    userAgent: "contract-test",
    detail: { index },
    createdAt: time(index),
  };
}

function newKeyAt(owner: string, overrides: Partial<NewProviderKey> = {}): NewProviderKey {
  return newKey(owner, time(0), overrides);
}
