import type { Kysely, Selectable, Transaction } from "kysely";
import { KEY_STATUSES, PROVIDER_IDS } from "../../lib/domain.js";
import type { ProviderId } from "../../lib/domain.js";
import { AppError } from "../../lib/errors.js";
import type { InsertKeyResult, KeyPatch, KeyRepo, NewProviderKey, ProviderKeyRow, SecretReplacement, StatusChange, WithEvents } from "../ports.js";
import { writeAuditEvent } from "./audit-repo.js";
import type { DialectHooks } from "./dialect-hooks.js";
import { toBoolean, toMember, toNullableSafeInteger, toSafeInteger } from "./row-values.js";
import { UNIQUE_INDEXES } from "./schema.js";
import type { Database, ProviderKeysTable } from "./schema.js";

/** A duplicate whose holder was deleted before it could be named is retried this many times. */
const DUPLICATE_ATTEMPTS = 3;

/** Maps a `provider_keys` row to the port shape, field by field. */
export function toProviderKeyRow(row: Selectable<ProviderKeysTable>): ProviderKeyRow {
  return {
    id: row.id,
    owner: row.owner,
    provider: toMember(row.provider, PROVIDER_IDS, "provider_keys.provider"),
    label: row.label,
    keyHint: row.key_hint,
    fingerprint: row.fingerprint,
    ciphertext: row.ciphertext,
    status: toMember(row.status, KEY_STATUSES, "provider_keys.status"),
    statusDetail: row.status_detail,
    statusChangedAt: row.status_changed_at,
    isActive: toBoolean(row.is_active, "provider_keys.is_active"),
    monthlyLimitNanoUsd: toNullableSafeInteger(row.monthly_limit_nano_usd, "provider_keys.monthly_limit_nano_usd"),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastTestedAt: row.last_tested_at,
    lastUsedAt: row.last_used_at,
    totalRequests: toSafeInteger(row.total_requests, "provider_keys.total_requests"),
    totalTokens: toSafeInteger(row.total_tokens, "provider_keys.total_tokens"),
    costNanoUsd: toSafeInteger(row.cost_nano_usd, "provider_keys.cost_nano_usd"),
  };
}

const isFound = (row: unknown): boolean => row !== undefined;

function mapOptional(row: Selectable<ProviderKeysTable> | undefined): ProviderKeyRow | undefined {
  return row === undefined ? undefined : toProviderKeyRow(row);
}

/** The shared provider-key repository; every statement filters by owner. */
export function createKeyRepo(db: Kysely<Database>, hooks: DialectHooks): KeyRepo {
  const findByFingerprint = async (owner: string, fingerprint: string): Promise<ProviderKeyRow | undefined> =>
    mapOptional(
      await db.selectFrom("provider_keys").selectAll().where("owner", "=", owner).where("fingerprint", "=", fingerprint).executeTakeFirst(),
    );

  /**
   * Runs a write that may hit the (owner, fingerprint) index and turns that violation into
   * `duplicate` naming the row that holds the fingerprint. The index decides, so two racing
   * writers cannot both win.
   */
  async function withDuplicateCheck<T>(
    owner: string,
    fingerprint: string,
    write: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; reason: "duplicate"; existingId: string }> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return { ok: true, value: await write() };
      } catch (error) {
        if (!hooks.isUniqueViolation(error, UNIQUE_INDEXES.providerKeyFingerprint)) throw error;
      }
      const existing = await findByFingerprint(owner, fingerprint);
      if (existing !== undefined) return { ok: false, reason: "duplicate", existingId: existing.id };
      // The holder was deleted between the failed write and the lookup: the fingerprint is free.
      if (attempt >= DUPLICATE_ATTEMPTS) {
        throw new AppError("internal", "Could not store the key; try again", { internal: { owner, reason: "duplicate_race" } });
      }
    }
  }

  async function writeEvents(tx: Transaction<Database>, events: WithEvents | undefined): Promise<void> {
    for (const event of events ?? []) await writeAuditEvent(tx, event);
  }

  /**
   * Runs `write` and, when `found` says it found its row, writes `events` in the same transaction.
   * Without events it is the one statement, outside any transaction.
   */
  async function withEvents<T>(events: WithEvents | undefined, write: (executor: Kysely<Database>) => Promise<T>, found: (result: T) => boolean = isFound): Promise<T> {
    if (events === undefined || events.length === 0) return write(db);
    return db.transaction().execute(async (tx) => {
      const result = await write(tx);
      if (found(result)) await writeEvents(tx, events);
      return result;
    });
  }

  async function deactivateOthers(tx: Transaction<Database>, owner: string, provider: ProviderId, keepId: string, at: string): Promise<void> {
    await tx
      .updateTable("provider_keys")
      .set({ is_active: 0, updated_at: at })
      .where("owner", "=", owner)
      .where("provider", "=", provider)
      .where("is_active", "=", 1)
      .where("id", "!=", keepId)
      .execute();
  }

  return {
    async insert(row: NewProviderKey, options: { activate: boolean; at: string }, events?: WithEvents): Promise<InsertKeyResult> {
      const values = {
        id: row.id,
        owner: row.owner,
        provider: row.provider,
        label: row.label,
        key_hint: row.keyHint,
        fingerprint: row.fingerprint,
        ciphertext: row.ciphertext,
        status: row.status,
        status_detail: row.statusDetail,
        status_changed_at: options.at,
        is_active: options.activate ? 1 : 0,
        monthly_limit_nano_usd: row.monthlyLimitNanoUsd,
        created_at: row.createdAt,
        updated_at: options.at,
        last_tested_at: row.lastTestedAt,
        last_used_at: null,
        total_requests: 0,
        total_tokens: 0,
        cost_nano_usd: 0,
      };
      const result = await withDuplicateCheck(row.owner, row.fingerprint, async () => {
        if (!options.activate && (events === undefined || events.length === 0)) {
          await db.insertInto("provider_keys").values(values).execute();
          return;
        }
        await db.transaction().execute(async (tx) => {
          if (options.activate) {
            await hooks.lockOwner(tx, row.owner);
            await deactivateOthers(tx, row.owner, row.provider, row.id, options.at);
          }
          await tx.insertInto("provider_keys").values(values).execute();
          await writeEvents(tx, events);
        });
      });
      return result.ok ? { ok: true } : result;
    },

    async findById(owner: string, id: string): Promise<ProviderKeyRow | undefined> {
      return mapOptional(await db.selectFrom("provider_keys").selectAll().where("owner", "=", owner).where("id", "=", id).executeTakeFirst());
    },

    findByFingerprint,

    async list(owner: string, provider?: ProviderId): Promise<ProviderKeyRow[]> {
      let query = db.selectFrom("provider_keys").selectAll().where("owner", "=", owner);
      if (provider !== undefined) query = query.where("provider", "=", provider);
      const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").execute();
      return rows.map(toProviderKeyRow);
    },

    async findActive(owner: string, provider: ProviderId): Promise<ProviderKeyRow | undefined> {
      return mapOptional(
        await db
          .selectFrom("provider_keys")
          .selectAll()
          .where("owner", "=", owner)
          .where("provider", "=", provider)
          .where("is_active", "=", 1)
          .executeTakeFirst(),
      );
    },

    async update(owner: string, id: string, patch: KeyPatch, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined> {
      const row = await withEvents(events, (executor) =>
        executor
          .updateTable("provider_keys")
          .set({
            updated_at: at,
            ...(patch.label === undefined ? {} : { label: patch.label }),
            ...(patch.monthlyLimitNanoUsd === undefined ? {} : { monthly_limit_nano_usd: patch.monthlyLimitNanoUsd }),
          })
          .where("owner", "=", owner)
          .where("id", "=", id)
          .returningAll()
          .executeTakeFirst(),
      );
      return mapOptional(row);
    },

    async activate(owner: string, id: string, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined> {
      // Deactivate first, then activate: the partial unique index on active keys never sees two.
      const row = await db.transaction().execute(async (tx) => {
        await hooks.lockOwner(tx, owner);
        const target = await tx.selectFrom("provider_keys").select("provider").where("owner", "=", owner).where("id", "=", id).executeTakeFirst();
        if (target === undefined) return undefined;
        await deactivateOthers(tx, owner, toMember(target.provider, PROVIDER_IDS, "provider_keys.provider"), id, at);
        const activated = await tx
          .updateTable("provider_keys")
          .set({ is_active: 1, updated_at: at })
          .where("owner", "=", owner)
          .where("id", "=", id)
          .returningAll()
          .executeTakeFirst();
        if (activated !== undefined) await writeEvents(tx, events);
        return activated;
      });
      return mapOptional(row);
    },

    async deactivate(owner: string, id: string, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined> {
      const row = await withEvents(events, (executor) =>
        executor
          .updateTable("provider_keys")
          .set({ is_active: 0, updated_at: at })
          .where("owner", "=", owner)
          .where("id", "=", id)
          .returningAll()
          .executeTakeFirst(),
      );
      return mapOptional(row);
    },

    async replaceSecret(owner: string, id: string, replacement: SecretReplacement, events?: WithEvents): Promise<InsertKeyResult & { row?: ProviderKeyRow }> {
      const result = await withDuplicateCheck(owner, replacement.fingerprint, () =>
        withEvents(events, (executor) =>
          executor
            .updateTable("provider_keys")
            .set({
              ciphertext: replacement.ciphertext,
              key_hint: replacement.keyHint,
              fingerprint: replacement.fingerprint,
              status: replacement.status,
              status_detail: replacement.statusDetail,
              status_changed_at: replacement.at,
              last_tested_at: replacement.testedAt,
              updated_at: replacement.at,
            })
            .where("owner", "=", owner)
            .where("id", "=", id)
            .returningAll()
            .executeTakeFirst(),
        ),
      );
      if (!result.ok) return result;
      // A missing (or another owner's) id: nothing replaced, so no row.
      if (result.value === undefined) return { ok: true };
      // The old ciphertext must not linger after a rotation either.
      await hooks.afterSecretRemoved(db);
      return { ok: true, row: toProviderKeyRow(result.value) };
    },

    async setStatus(owner: string, id: string, change: StatusChange, events?: WithEvents): Promise<ProviderKeyRow | undefined> {
      const row = await withEvents(events, (executor) => {
        let update = executor
          .updateTable("provider_keys")
          .set((eb) => ({
            status: change.status,
            status_detail: change.statusDetail,
            // Records when the status last *changed*; a re-test confirming it keeps the old time.
            status_changed_at: eb.case().when("status", "=", change.status).then(eb.ref("status_changed_at")).else(change.at).end(),
            updated_at: change.at,
            ...(change.testedAt === undefined ? {} : { last_tested_at: change.testedAt }),
          }))
          .where("owner", "=", owner)
          .where("id", "=", id);
        if (change.onlyIfDifferent === true) update = update.where("status", "!=", change.status);
        return update.returningAll().executeTakeFirst();
      });
      return mapOptional(row);
    },

    async delete(owner: string, id: string, events?: WithEvents): Promise<boolean> {
      const result = await withEvents(
        events,
        (executor) => executor.deleteFrom("provider_keys").where("owner", "=", owner).where("id", "=", id).executeTakeFirst(),
        (deleted) => deleted.numDeletedRows > 0n,
      );
      const isDeleted = result.numDeletedRows > 0n;
      if (isDeleted) await hooks.afterSecretRemoved(db);
      return isDeleted;
    },
  };
}
