import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import type { NewProviderKey } from "./ports.js";
import { createSqliteStore } from "./sqlite/create-sqlite-store.js";
import { runStoreContract } from "./store.contract.js";

const directory = mkdtempSync(join(tmpdir(), "keyport-sqlite-"));
const newPath = (): string => join(directory, `${randomUUID()}.db`);

// At file level, so the directory goes even when a filter skips the whole contract suite.
afterAll(() => rmSync(directory, { recursive: true, force: true }));

runStoreContract("sqlite", () => createSqliteStore({ path: newPath() }));

describe("sqlite store file handling", () => {
  const ownDirectory = mkdtempSync(join(tmpdir(), "keyport-sqlite-files-"));
  afterAll(() => rmSync(ownDirectory, { recursive: true, force: true }));

  /** The database file and its WAL as one byte string, as someone copying `./data` would get. */
  function fileBytes(path: string): string {
    const wal = `${path}-wal`;
    return readFileSync(path).toString("latin1") + (existsSync(wal) ? readFileSync(wal).toString("latin1") : "");
  }

  const createdAt = "2025-01-01T00:00:00.000Z";
  const keyWith = (owner: string, fingerprint: string, ciphertext: string): NewProviderKey => ({
    id: newId("key"),
    owner,
    provider: "openai",
    label: "Main",
    keyHint: "****...abc1",
    fingerprint,
    ciphertext,
    status: "valid",
    statusDetail: null,
    monthlyLimitNanoUsd: null,
    createdAt,
    lastTestedAt: null,
  });

  it("removes a deleted key's ciphertext from the database file and the WAL", async () => {
    const path = join(ownDirectory, "scrub.db");
    const store = await createSqliteStore({ path });
    try {
      const marker = `CIPHERTEXT-MARKER-${randomUUID()}`;
      const key = keyWith("user:scrub", "fp-scrub", marker);
      await store.keys.insert(key, { activate: true, at: createdAt });
      // Keep another key so the page stays in use rather than being freed whole.
      await store.keys.insert(keyWith(key.owner, "fp-keep", "ct-keep"), { activate: false, at: createdAt });
      expect(fileBytes(path)).toContain(marker);

      expect(await store.keys.delete(key.owner, key.id)).toBe(true);
      expect(fileBytes(path)).not.toContain(marker);
      expect(fileBytes(path)).toContain("ct-keep");
    } finally {
      await store.close();
    }
  });

  it("removes a replaced ciphertext from the files too", async () => {
    const path = join(ownDirectory, "rotate.db");
    const store = await createSqliteStore({ path });
    try {
      const marker = `OLD-CIPHERTEXT-${randomUUID()}`;
      const key = keyWith("user:rotate", "fp-1", marker);
      await store.keys.insert(key, { activate: true, at: createdAt });
      expect(fileBytes(path)).toContain(marker);
      const result = await store.keys.replaceSecret(key.owner, key.id, {
        ciphertext: "ct-new",
        keyHint: "h2",
        fingerprint: "fp-2",
        status: "valid",
        statusDetail: null,
        at: createdAt,
        testedAt: null,
      });
      expect(result.ok).toBe(true);
      expect(fileBytes(path)).not.toContain(marker);
    } finally {
      await store.close();
    }
  });

  it("creates a missing directory with mode 0700 and the database with mode 0600", async () => {
    const path = join(ownDirectory, "nested", "deeper", "keyport.db");
    const store = await createSqliteStore({ path });
    try {
      await store.masterKeys.insert({ kid: "k1", verifier: "v", createdAt: "2025-01-01T00:00:00.000Z" });
      expect(statSync(join(ownDirectory, "nested", "deeper")).mode & 0o777).toBe(0o700);
      expect(statSync(join(ownDirectory, "nested")).mode & 0o777).toBe(0o700);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    } finally {
      await store.close();
    }
  });

  it("tightens an existing database file to mode 0600", async () => {
    const path = join(ownDirectory, "loose.db");
    writeFileSync(path, "");
    chmodSync(path, 0o644);
    const store = await createSqliteStore({ path });
    await store.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("keeps data across reopening, runs migrations once and leaves the file in WAL mode", async () => {
    const path = join(ownDirectory, "reopen.db");
    const first = await createSqliteStore({ path });
    await first.masterKeys.insert({ kid: "k1", verifier: "v", createdAt: "2025-01-01T00:00:00.000Z" });
    await first.close();
    const second = await createSqliteStore({ path });
    try {
      expect(await second.masterKeys.list()).toEqual([{ kid: "k1", verifier: "v", createdAt: "2025-01-01T00:00:00.000Z" }]);
    } finally {
      await second.close();
    }
    const raw = new SqliteDatabase(path, { readonly: true });
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      const applied = raw.prepare("select name from kysely_migration order by name").all();
      expect(applied).toEqual([{ name: "0001_foundation" }, { name: "0002_usage" }, { name: "0003_usage_daily" }, { name: "0004_drop_usage_key_index" }, { name: "0007_portal_sessions" }]);
    } finally {
      raw.close();
    }
  });

  it("refuses a database migrated by a newer version", async () => {
    const path = join(ownDirectory, "newer.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path);
    raw.prepare("insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')").run();
    raw.close();
    await expect(createSqliteStore({ path })).rejects.toMatchObject({ code: "internal", publicMessage: "Database migration failed" });
  });

  it("refuses a path that is not a database", async () => {
    const path = join(ownDirectory, "garbage.db");
    writeFileSync(path, "this is not a sqlite database, just text long enough to look like a header");
    await expect(createSqliteStore({ path })).rejects.toThrow();
  });

  it("opens an in-memory store", async () => {
    const store = await createSqliteStore({ path: ":memory:" });
    try {
      expect(store.dialect).toBe("sqlite");
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
