import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { createTestSchemaName, describePostgres, dropTestSchemas, emptyTables } from "../../test/support/postgres.js";
import { knownMigrationNames } from "./migrations/migrations.js";
import { createPostgresStore } from "./postgres/create-postgres-store.js";
import { runStoreContract } from "./store.contract.js";

await describePostgres("postgres store", (url) => {
  const schemas: string[] = [];
  /** A store in its own new schema; every schema is dropped after the suite. */
  const createIsolatedStore = (schema = createTestSchemaName(), poolSize?: number) => {
    if (!schemas.includes(schema)) schemas.push(schema);
    return createPostgresStore({ url, schema, ...(poolSize === undefined ? {} : { poolSize }) });
  };
  afterAll(() => dropTestSchemas(url, schemas));

  // One schema for the contract, emptied before each test: a new schema per test costs a
  // migration each, which made this file several times slower.
  const contractSchema = createTestSchemaName();
  runStoreContract("postgres", async () => {
    const store = await createIsolatedStore(contractSchema);
    await emptyTables(url, contractSchema);
    return store;
  });

  it("migrates once when several instances start together on one schema", async () => {
    const schema = createTestSchemaName();
    const stores = await Promise.all([1, 2, 3, 4].map(() => createIsolatedStore(schema, 2)));
    try {
      for (const store of stores) await expect(store.ping()).resolves.toBeUndefined();
      await stores[0]?.masterKeys.insert({ kid: "k1", verifier: "v", createdAt: "2025-01-01T00:00:00.000Z" });
      expect(await stores[3]?.masterKeys.list()).toHaveLength(1);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const applied = await client.query(`select name from "${schema}".kysely_migration order by name`);
      expect(applied.rows).toEqual(knownMigrationNames().map((name) => ({ name })));
      const tables = await client.query("select table_name from information_schema.tables where table_schema = $1", [schema]);
      expect(tables.rows.map((row: { table_name: string }) => row.table_name)).toEqual(
        expect.arrayContaining(["audit_events", "data_keys", "idempotency_keys", "master_keys", "portal_sessions", "provider_keys", "usage_daily", "usage_records"]),
      );
    } finally {
      await client.end();
    }
  });

  it("works with a pool of one connection", async () => {
    const store = await createIsolatedStore(undefined, 1);
    try {
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("stores money columns as bigint and reads them back as numbers", async () => {
    const schema = createTestSchemaName();
    const store = await createIsolatedStore(schema);
    try {
      const limit = 2 ** 40 + 7;
      const key = {
        id: "key_0000000000000000000000000a",
        owner: "user:bigint",
        provider: "openai",
        label: "Main",
        keyHint: "h",
        fingerprint: "fp",
        ciphertext: "ct",
        status: "valid",
        statusDetail: null,
        monthlyLimitNanoUsd: limit,
        createdAt: "2025-01-01T00:00:00.000Z",
        lastTestedAt: null,
      } as const;
      await store.keys.insert(key, { activate: true, at: key.createdAt });
      expect((await store.keys.findById(key.owner, key.id))?.monthlyLimitNanoUsd).toBe(limit);
    } finally {
      await store.close();
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const columns = await client.query(
        `select column_name, data_type from information_schema.columns
         where table_schema = $1 and table_name = 'provider_keys'
           and column_name in ('monthly_limit_nano_usd', 'cost_nano_usd', 'is_active')
         order by column_name`,
        [schema],
      );
      expect(columns.rows).toEqual([
        { column_name: "cost_nano_usd", data_type: "bigint" },
        { column_name: "is_active", data_type: "integer" },
        { column_name: "monthly_limit_nano_usd", data_type: "bigint" },
      ]);
    } finally {
      await client.end();
    }
  });

  it("migrates while other schemas of the database are being dropped (the migrator lists every schema's tables)", { timeout: 120_000 }, async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let isChurning = true;
    // Another application (or another test run) creating and dropping schemas all along.
    const churn = (async () => {
      while (isChurning) {
        const other = createTestSchemaName();
        await client.query(`create schema "${other}"; create table "${other}".t (id serial primary key, a text)`);
        await client.query(`drop schema "${other}" cascade`);
      }
    })();
    try {
      for (let round = 0; round < 8; round += 1) {
        const store = await createIsolatedStore();
        await store.close();
      }
    } finally {
      isChurning = false;
      await churn;
      await client.end();
    }
  });

  it("refuses a schema name it would have to quote", async () => {
    await expect(createPostgresStore({ url, schema: "bad-name; drop schema public" })).rejects.toMatchObject({ code: "internal" });
    await expect(createPostgresStore({ url, poolSize: 0 })).rejects.toMatchObject({ code: "internal" });
  });

  it("fails to start against an unreachable server without exposing the URL's password", async () => {
    const password = "pw-CANARY-0123456789";
    for (const badUrl of [`postgres://postgres:${password}@127.0.0.1:1/none`, `postgres://postgres:${password}@[bad/none`]) {
      const failure: unknown = await createPostgresStore({ url: badUrl }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({ code: "unavailable" });
      expect(JSON.stringify(failure, Object.getOwnPropertyNames(failure))).not.toContain(password);
      expect(JSON.stringify((failure as { internal?: unknown }).internal)).not.toContain(password);
    }
  });
});
