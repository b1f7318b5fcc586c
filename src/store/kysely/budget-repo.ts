import { type Kysely, sql, type Transaction } from "kysely";
import { type AuditEvent, type BudgetMonth, type BudgetRepo, type BudgetReserveResult, type OwnerLimitsRepo, type OwnerLimitsRow, UNPRICED_FALLBACK } from "../ports.js";
import { writeAuditEvent } from "./audit-repo.js";
import { toNullableSafeInteger, toSafeInteger } from "./row-values.js";
import { type Database, PLATFORM_KEY_ID } from "./schema.js";

/** Thrown inside the reserve transaction to roll it back; carries the cap that refused. */
class CapReached extends Error {
  constructor(
    readonly counter: string,
    readonly spentNanoUsd: number,
  ) {
    super("cap reached");
  }
}

const KEY_COUNTER = "key:";

/**
 * Which `usage_daily` rows a counter sums: all of the owner's (`owner`), the platform key's
 * (`platform`) or one key's (`key:<id>`). Anything else is a bug.
 */
export function usageFilter(counter: string): { column: "source" | "key_id"; value: string } | undefined {
  if (counter === "owner") return undefined;
  if (counter === "platform") return { column: "source", value: "platform" };
  if (counter.startsWith(KEY_COUNTER) && counter.length > KEY_COUNTER.length) {
    const keyId = counter.slice(KEY_COUNTER.length);
    if (keyId !== PLATFORM_KEY_ID) return { column: "key_id", value: keyId };
  }
  throw new Error(`unknown budget counter ${counter}`);
}

/** Nano-USD per token (rounded up) at the fallback prices: input at the highest of its three prices. */
const UNPRICED_INPUT_PER_TOKEN = Math.ceil(
  Math.max(UNPRICED_FALLBACK.inputNanoUsdPerMTok, UNPRICED_FALLBACK.cachedInputNanoUsdPerMTok, UNPRICED_FALLBACK.cacheWriteNanoUsdPerMTok) / 1_000_000,
);
const UNPRICED_OUTPUT_PER_TOKEN = Math.ceil(UNPRICED_FALLBACK.outputNanoUsdPerMTok / 1_000_000);

function settledQuery(db: Kysely<Database>, owner: string, month: BudgetMonth, counter: string) {
  const filter = usageFilter(counter);
  // A row whose records have no cost (`unpriced`) is charged at the fallback prices on its tokens,
  // as the budget charged those calls when they settled.
  const spent = sql<number>`coalesce(sum(cost_nano_usd + case when unpriced > 0 then input_tokens * ${sql.lit(UNPRICED_INPUT_PER_TOKEN)} + output_tokens * ${sql.lit(UNPRICED_OUTPUT_PER_TOKEN)} else 0 end), 0)`;
  let query = db
    .selectFrom("usage_daily")
    .select([sql.val(owner).as("owner"), sql.val(month.month).as("month"), sql.val(counter).as("counter"), spent.as("spent_nano_usd")])
    .where("owner", "=", owner)
    .where("day", ">=", month.firstDay)
    .where("day", "<", month.nextFirstDay);
  if (filter !== undefined) query = query.where(filter.column, "=", filter.value);
  return query;
}

/** Budget counters and notices (see `BudgetRepo`); the same statements on both dialects. */
export function createBudgetRepo(db: Kysely<Database>): BudgetRepo {
  async function seed(tx: Transaction<Database>, owner: string, month: BudgetMonth, counter: string): Promise<void> {
    await tx
      .insertInto("budget_counters")
      .columns(["owner", "month", "counter", "spent_nano_usd"])
      .expression(settledQuery(tx, owner, month, counter))
      .onConflict((conflict) => conflict.columns(["owner", "month", "counter"]).doNothing())
      .execute();
  }

  async function exists(tx: Kysely<Database>, owner: string, month: string, counter: string): Promise<boolean> {
    const row = await tx
      .selectFrom("budget_counters")
      .select("counter")
      .where("owner", "=", owner)
      .where("month", "=", month)
      .where("counter", "=", counter)
      .executeTakeFirst();
    return row !== undefined;
  }

  async function spentOf(tx: Kysely<Database>, owner: string, month: string, counter: string): Promise<number> {
    const row = await tx
      .selectFrom("budget_counters")
      .select("spent_nano_usd")
      .where("owner", "=", owner)
      .where("month", "=", month)
      .where("counter", "=", counter)
      .executeTakeFirst();
    return row === undefined ? 0 : toSafeInteger(row.spent_nano_usd, "budget_counters.spent_nano_usd");
  }

  return {
    async reserve(owner, month, caps, amountNanoUsd): Promise<BudgetReserveResult> {
      // One order for every transaction, so two reservations never wait on each other's rows.
      const sorted = [...caps].sort((a, b) => (a.counter < b.counter ? -1 : a.counter > b.counter ? 1 : 0));
      try {
        return await db.transaction().execute(async (tx) => {
          const spent: Record<string, number> = {};
          const refused = new Map<string, number>();
          // Conditional: on PostgreSQL a concurrent reservation holds the row until it commits,
          // and this condition is then evaluated again on the row it left.
          const take = (counter: string, limitNanoUsd: number) =>
            tx
              .updateTable("budget_counters")
              .set((eb) => ({ spent_nano_usd: eb("spent_nano_usd", "+", amountNanoUsd) }))
              .where("owner", "=", owner)
              .where("month", "=", month.month)
              .where("counter", "=", counter)
              .where((eb) => eb(eb("spent_nano_usd", "+", amountNanoUsd), "<=", limitNanoUsd))
              .returning("spent_nano_usd")
              .executeTakeFirst();
          for (const cap of sorted) {
            let updated = await take(cap.counter, cap.limitNanoUsd);
            // Nothing taken: the counter is full, or it did not exist when the UPDATE ran. It is
            // seeded only then (the usual reservation is one statement), and taken from again
            // either way: a concurrent reservation may have created it since (PostgreSQL's
            // READ COMMITTED shows its row to the next statement, not to the UPDATE that missed it).
            if (updated === undefined) {
              if (!(await exists(tx, owner, month.month, cap.counter))) await seed(tx, owner, month, cap.counter);
              updated = await take(cap.counter, cap.limitNanoUsd);
            }
            if (updated === undefined) refused.set(cap.counter, await spentOf(tx, owner, month.month, cap.counter));
            else spent[cap.counter] = toSafeInteger(updated.spent_nano_usd, "budget_counters.spent_nano_usd");
          }
          // The first cap in the caller's order that refused is the one the caller is told about.
          const first = caps.find((cap) => refused.has(cap.counter));
          if (first !== undefined) throw new CapReached(first.counter, refused.get(first.counter) ?? 0);
          return { ok: true as const, spentNanoUsd: spent };
        });
      } catch (error) {
        if (error instanceof CapReached) return { ok: false, counter: error.counter, spentNanoUsd: error.spentNanoUsd };
        throw error;
      }
    },

    async adjust(owner, month, counters, deltaNanoUsd): Promise<Record<string, number>> {
      if (counters.length === 0) return {};
      const rows = await db
        .updateTable("budget_counters")
        .set((eb) => ({ spent_nano_usd: eb("spent_nano_usd", "+", deltaNanoUsd) }))
        .where("owner", "=", owner)
        .where("month", "=", month)
        .where("counter", "in", [...counters])
        .returning(["counter", "spent_nano_usd"])
        .execute();
      return Object.fromEntries(rows.map((row) => [row.counter, toSafeInteger(row.spent_nano_usd, "budget_counters.spent_nano_usd")]));
    },

    async settledSpend(owner, month, counters): Promise<Record<string, number>> {
      const spent: Record<string, number> = {};
      for (const counter of counters) {
        const row = await settledQuery(db, owner, month, counter).executeTakeFirst();
        spent[counter] = row === undefined ? 0 : toSafeInteger(row.spent_nano_usd, "usage_daily.cost_nano_usd");
      }
      return spent;
    },

    async counters(owner, month): Promise<Record<string, number>> {
      const rows = await db.selectFrom("budget_counters").select(["counter", "spent_nano_usd"]).where("owner", "=", owner).where("month", "=", month).execute();
      return Object.fromEntries(rows.map((row) => [row.counter, toSafeInteger(row.spent_nano_usd, "budget_counters.spent_nano_usd")]));
    },

    async dropCounter(owner, month, counter): Promise<void> {
      await db.deleteFrom("budget_counters").where("owner", "=", owner).where("month", "=", month).where("counter", "=", counter).execute();
    },

    async recordNotice(owner, month, notice, event: AuditEvent): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const inserted = await tx
          .insertInto("budget_notices")
          .values({ owner, month, notice, event_id: event.id, created_at: event.createdAt })
          .onConflict((conflict) => conflict.columns(["owner", "month", "notice"]).doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
        await writeAuditEvent(tx, event);
        return true;
      });
    },
  };
}

/** Owners' limits (one row each). */
export function createOwnerLimitsRepo(db: Kysely<Database>): OwnerLimitsRepo {
  return {
    async find(owner): Promise<OwnerLimitsRow | undefined> {
      const row = await db.selectFrom("owner_limits").selectAll().where("owner", "=", owner).executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        owner: row.owner,
        monthlyBudgetNanoUsd: toNullableSafeInteger(row.monthly_budget_nano_usd, "owner_limits.monthly_budget_nano_usd"),
        notifyThresholdNanoUsd: toNullableSafeInteger(row.notify_threshold_nano_usd, "owner_limits.notify_threshold_nano_usd"),
        notifyEmail: row.notify_email,
        webhookUrl: row.webhook_url,
        updatedAt: row.updated_at,
      };
    },
    async save(row): Promise<void> {
      const values = {
        monthly_budget_nano_usd: row.monthlyBudgetNanoUsd,
        notify_threshold_nano_usd: row.notifyThresholdNanoUsd,
        notify_email: row.notifyEmail,
        webhook_url: row.webhookUrl,
        updated_at: row.updatedAt,
      };
      await db
        .insertInto("owner_limits")
        .values({ owner: row.owner, ...values })
        .onConflict((conflict) => conflict.column("owner").doUpdateSet(values))
        .execute();
    },
  };
}
