import type SqliteDatabase from "better-sqlite3";
import type { Kysely } from "kysely";
import type { BudgetCap, BudgetMonth, BudgetRepo, BudgetReserveResult } from "../ports.js";
import { usageFilter } from "../kysely/budget-repo.js";
import type { Database } from "../kysely/schema.js";

/** Rolls the reservation's transaction back; carries the cap that refused. */
class CapReached extends Error {
  constructor(
    readonly counter: string,
    readonly spentNanoUsd: number,
  ) {
    super("cap reached");
  }
}

const COUNTER_KEY = "owner = ? and month = ? and counter = ?";

type ReserveRequest = {
  owner: string;
  month: BudgetMonth;
  caps: readonly BudgetCap[];
  amount: number;
  resolve: (result: BudgetReserveResult) => void;
  reject: (error: unknown) => void;
};

/**
 * Budget reservations and settlements on SQLite with statements prepared once and run
 * synchronously in `BEGIN IMMEDIATE` transactions, on Kysely's one connection (taken through
 * `db.connection()`, so never inside another store transaction). Same contract as the portable
 * repository; a reservation runs on every capped gateway call, and building, compiling and
 * awaiting three Kysely statements for it cost about as much CPU as the rest of the call.
 */
export function createSqliteBudgetWrites(db: Kysely<Database>, database: SqliteDatabase.Database): Pick<BudgetRepo, "reserve" | "adjust"> {
  const take = database.prepare<[number, string, string, string, number, number], { spent_nano_usd: number }>(
    `update budget_counters set spent_nano_usd = spent_nano_usd + ? where ${COUNTER_KEY} and spent_nano_usd + ? <= ? returning spent_nano_usd`,
  );
  const read = database.prepare<[string, string, string], { spent_nano_usd: number }>(`select spent_nano_usd from budget_counters where ${COUNTER_KEY}`);
  const add = database.prepare<[number, string, string, string], { spent_nano_usd: number }>(
    `update budget_counters set spent_nano_usd = spent_nano_usd + ? where ${COUNTER_KEY} returning spent_nano_usd`,
  );
  const seedSql = (filter: string) =>
    database.prepare(
      `insert into budget_counters (owner, month, counter, spent_nano_usd)
       select ?, ?, ?, coalesce(sum(cost_nano_usd), 0) from usage_daily where owner = ? and day >= ? and day < ?${filter}
       on conflict (owner, month, counter) do nothing`,
    );
  const seeds = { all: seedSql(""), source: seedSql(" and source = ?"), key_id: seedSql(" and key_id = ?") };

  function seed(owner: string, month: BudgetMonth, counter: string): void {
    const filter = usageFilter(counter);
    const base = [owner, month.month, counter, owner, month.firstDay, month.nextFirstDay];
    if (filter === undefined) seeds.all.run(base);
    else seeds[filter.column].run([...base, filter.value]);
  }

  const reserveAll = database.transaction((owner: string, month: BudgetMonth, caps: readonly BudgetCap[], amount: number): Record<string, number> => {
    const spent: Record<string, number> = {};
    let refused: { counter: string; spentNanoUsd: number } | undefined;
    for (const cap of caps) {
      const taken = () => take.get(amount, owner, month.month, cap.counter, amount, cap.limitNanoUsd);
      let row = taken();
      if (row === undefined && read.get(owner, month.month, cap.counter) === undefined) {
        seed(owner, month, cap.counter);
        row = taken();
      }
      if (row !== undefined) spent[cap.counter] = row.spent_nano_usd;
      // The first cap in the caller's order that refused is the one the caller is told about.
      else refused ??= { counter: cap.counter, spentNanoUsd: read.get(owner, month.month, cap.counter)?.spent_nano_usd ?? 0 };
    }
    if (refused !== undefined) throw new CapReached(refused.counter, refused.spentNanoUsd);
    return spent;
  });

  const adjustAll = database.transaction((owner: string, month: string, counters: readonly string[], delta: number): Record<string, number> => {
    const values: Record<string, number> = {};
    for (const counter of counters) {
      const row = add.get(delta, owner, month, counter);
      if (row !== undefined) values[counter] = row.spent_nano_usd;
    }
    return values;
  });

  /** One reservation inside the batch's transaction: its own savepoint, so a refusal undoes only it. */
  function reserveOne(request: ReserveRequest): BudgetReserveResult {
    try {
      return { ok: true, spentNanoUsd: reserveAll(request.owner, request.month, request.caps, request.amount) };
    } catch (error) {
      if (error instanceof CapReached) return { ok: false, counter: error.counter, spentNanoUsd: error.spentNanoUsd };
      throw error;
    }
  }
  const reserveBatch = database.transaction((batch: readonly ReserveRequest[]) => batch.map(reserveOne));

  /**
   * The usual lone reservation against one existing counter that has room: the conditional UPDATE
   * on its own, atomic in SQLite's autocommit (a third less time than inside BEGIN … COMMIT).
   * Anything else (no room, no counter yet, several caps) is `undefined` and goes the full way;
   * an UPDATE that matched nothing changed nothing.
   */
  function takeAlone(request: ReserveRequest | undefined): BudgetReserveResult | undefined {
    const cap = request?.caps.length === 1 ? request.caps[0] : undefined;
    if (request === undefined || cap === undefined) return undefined;
    const row = take.get(request.amount, request.owner, request.month.month, cap.counter, request.amount, cap.limitNanoUsd);
    return row === undefined ? undefined : { ok: true, spentNanoUsd: { [cap.counter]: row.spent_nano_usd } };
  }

  // Group commit: the reservations asked for in one turn of the event loop (the calls whose
  // requests arrived together; `setImmediate` runs once the turn's I/O callbacks are done) and
  // those asked for while the connection is busy are taken in one transaction, each in its own
  // savepoint, so a busy gateway pays one commit for many calls. Alone, a reservation is its own
  // transaction, a few microseconds later.
  let waiting: ReserveRequest[] = [];
  let isScheduled = false;
  function runWaiting(): void {
    isScheduled = true;
    db.connection()
      .execute(async () => {
        isScheduled = false;
        const batch = waiting;
        waiting = [];
        let results: BudgetReserveResult[];
        try {
          const single = batch.length === 1 ? takeAlone(batch[0]) : undefined;
          results = single === undefined ? reserveBatch.immediate(batch) : [single];
        } catch (error) {
          for (const request of batch) request.reject(error);
          return;
        }
        batch.forEach((request, index) => {
          const result = results[index];
          if (result === undefined) request.reject(new Error("budget reservation without a result"));
          else request.resolve(result);
        });
      })
      .catch((error: unknown) => {
        // The connection itself failed (the store is closed): fail whatever still waits.
        isScheduled = false;
        for (const request of waiting.splice(0)) request.reject(error);
      });
  }

  return {
    reserve: (owner, month, caps, amountNanoUsd) =>
      new Promise<BudgetReserveResult>((resolve, reject) => {
        waiting.push({ owner, month, caps, amount: amountNanoUsd, resolve, reject });
        if (!isScheduled) {
          isScheduled = true;
          setImmediate(runWaiting);
        }
      }),
    adjust: async (owner, month, counters, deltaNanoUsd) => {
      if (counters.length === 0) return {};
      return db.connection().execute(async () => adjustAll.immediate(owner, month, counters, deltaNanoUsd));
    },
  };
}
