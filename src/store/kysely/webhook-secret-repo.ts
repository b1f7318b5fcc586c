import type { Kysely, Selectable } from "kysely";
import type { WebhookSecretRepo, WebhookSecretRow } from "../ports.js";
import type { Database, WebhookSecretsTable } from "./schema.js";

function toRow(row: Selectable<WebhookSecretsTable>): WebhookSecretRow {
  return {
    owner: row.owner,
    sealed: row.sealed,
    previousSealed: row.previous_sealed,
    previousExpiresAt: row.previous_expires_at,
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
  };
}

/** Owners' webhook signing secrets (sealed blobs only; the store never sees a plaintext secret). */
export function createWebhookSecretRepo(db: Kysely<Database>): WebhookSecretRepo {
  async function find(owner: string): Promise<WebhookSecretRow | undefined> {
    const row = await db.selectFrom("webhook_secrets").selectAll().where("owner", "=", owner).executeTakeFirst();
    return row === undefined ? undefined : toRow(row);
  }

  return {
    find,

    async insertIfAbsent(row): Promise<WebhookSecretRow> {
      await db
        .insertInto("webhook_secrets")
        .values({ owner: row.owner, sealed: row.sealed, previous_sealed: null, previous_expires_at: null, created_at: row.createdAt, rotated_at: null })
        .onConflict((conflict) => conflict.column("owner").doNothing())
        .execute();
      const stored = await find(row.owner);
      if (stored === undefined) throw new Error("webhook secret row missing right after its insert");
      return stored;
    },

    async rotate(owner, next): Promise<WebhookSecretRow | undefined> {
      // SET reads the row as it was: `previous_sealed` takes the secret being replaced.
      const row = await db
        .updateTable("webhook_secrets")
        .set((eb) => ({
          previous_sealed: eb.ref("sealed"),
          previous_expires_at: next.previousExpiresAt,
          sealed: next.sealed,
          rotated_at: next.at,
        }))
        .where("owner", "=", owner)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? undefined : toRow(row);
    },
  };
}
