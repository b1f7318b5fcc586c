import type { Kysely, Selectable } from "kysely";
import type { IdempotencyRecord, IdempotencyRepo } from "../ports.js";
import { toNullableSafeInteger } from "./row-values.js";
import type { Database, IdempotencyKeysTable } from "./schema.js";

/** A claim released between our failed insert and our read is retried this many times. */
const CLAIM_ATTEMPTS = 3;

function toIdempotencyRecord(row: Selectable<IdempotencyKeysTable>): IdempotencyRecord {
  return {
    owner: row.owner,
    key: row.key,
    requestHash: row.request_hash,
    statusCode: toNullableSafeInteger(row.status_code, "idempotency_keys.status_code"),
    responseBody: row.response_body,
    createdAt: row.created_at,
  };
}

/** The shared idempotency-key repository, scoped by (owner, key). */
export function createIdempotencyRepo(db: Kysely<Database>): IdempotencyRepo {
  return {
    async claim(record: Omit<IdempotencyRecord, "statusCode" | "responseBody">) {
      for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt += 1) {
        // The primary key decides who claims: a read-then-insert would let two requests both run.
        const result = await db
          .insertInto("idempotency_keys")
          .values({
            owner: record.owner,
            key: record.key,
            request_hash: record.requestHash,
            status_code: null,
            response_body: null,
            created_at: record.createdAt,
          })
          .onConflict((conflict) => conflict.columns(["owner", "key"]).doNothing())
          .executeTakeFirst();
        if ((result.numInsertedOrUpdatedRows ?? 0n) > 0n) return { claimed: true } as const;
        const existing = await db
          .selectFrom("idempotency_keys")
          .selectAll()
          .where("owner", "=", record.owner)
          .where("key", "=", record.key)
          .executeTakeFirst();
        if (existing !== undefined) return { claimed: false, existing: toIdempotencyRecord(existing) } as const;
      }
      throw new Error("Idempotency key kept changing while it was claimed");
    },

    async complete(owner: string, key: string, statusCode: number, responseBody: string): Promise<void> {
      await db
        .updateTable("idempotency_keys")
        .set({ status_code: statusCode, response_body: responseBody })
        .where("owner", "=", owner)
        .where("key", "=", key)
        .execute();
    },

    async release(owner: string, key: string): Promise<void> {
      await db.deleteFrom("idempotency_keys").where("owner", "=", owner).where("key", "=", key).execute();
    },

    async expire(before: string): Promise<number> {
      const result = await db.deleteFrom("idempotency_keys").where("created_at", "<", before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
