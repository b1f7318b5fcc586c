import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import {
  auditTypes,
  createUsers,
  type GatewayKeyport,
  keyView,
  startGateway,
  storeKey,
  type TestUser,
  upstreamRequests,
} from "../gateway/gateway-support.js";
import type { Dialect } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";

/**
 * The `data_keys` table reached around Keyport, the way a partial restore or a bad migration
 * would change it.
 */
type DataKeyTable = {
  read(owner: string): Promise<string | undefined>;
  remove(owner: string): Promise<void>;
  write(owner: string, wrapped: string): Promise<void>;
  count(owner: string): Promise<number>;
};

function sqliteDataKeys(path: string): DataKeyTable {
  const run = <T>(use: (database: Database.Database) => T): T => {
    const database = new Database(path, { fileMustExist: true });
    try {
      return use(database);
    } finally {
      database.close();
    }
  };
  return {
    read: async (owner) =>
      run((database) => (database.prepare("select wrapped from data_keys where owner = ?").get(owner) as { wrapped: string } | undefined)?.wrapped),
    remove: async (owner) => run((database) => void database.prepare("delete from data_keys where owner = ?").run(owner)),
    write: async (owner, wrapped) =>
      run(
        (database) =>
          void database
            .prepare("insert into data_keys (owner, kid, wrapped, created_at, updated_at) values (?, ?, ?, ?, ?) on conflict (owner) do update set wrapped = excluded.wrapped")
            .run(owner, kidOf(wrapped), wrapped, new Date().toISOString(), new Date().toISOString()),
      ),
    count: async (owner) => run((database) => (database.prepare("select count(*) as n from data_keys where owner = ?").get(owner) as { n: number }).n),
  };
}

function postgresDataKeys(url: string, schema: string): DataKeyTable {
  const run = async (text: string, values: unknown[]): Promise<pg.QueryResult> => {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.query(`set search_path to "${schema}"`);
      return await client.query(text, values);
    } finally {
      await client.end();
    }
  };
  return {
    read: async (owner) => (await run("select wrapped from data_keys where owner = $1", [owner])).rows[0]?.wrapped as string | undefined,
    remove: async (owner) => void (await run("delete from data_keys where owner = $1", [owner])),
    write: async (owner, wrapped) =>
      void (await run(
        "insert into data_keys (owner, kid, wrapped, created_at, updated_at) values ($1, $2, $3, $4, $4) on conflict (owner) do update set wrapped = excluded.wrapped",
        [owner, kidOf(wrapped), wrapped, new Date().toISOString()],
      )),
    count: async (owner) => Number((await run("select count(*) as n from data_keys where owner = $1", [owner])).rows[0]?.n),
  };
}

/** The master-key id in a wrapped data key's header: version | kidLength | kid | … */
function kidOf(wrapped: string): string {
  const bytes = Buffer.from(wrapped, "base64url");
  return bytes.subarray(2, 2 + (bytes[1] ?? 0)).toString("ascii");
}

/** The same blob with one ciphertext byte changed: it still parses, and its tag no longer verifies. */
function corrupt(wrapped: string): string {
  const bytes = Buffer.from(wrapped, "base64url");
  const at = bytes.length - 20;
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  return bytes.toString("base64url");
}

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };

function runDataKeyLossSuite(dialect: Dialect, postgresUrl?: string): void {
  let mock: MockProvider;
  let keyport: GatewayKeyport;
  let table: DataKeyTable;
  let newUser: (tier: string) => Promise<TestUser>;
  const schema = dialect === "postgres" ? createTestSchemaName() : undefined;

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: false });
    keyport = await startGateway({ mock, dialect, ...(schema === undefined ? {} : { postgresSchema: schema }) });
    const database = keyport.config.database;
    table =
      database.kind === "sqlite" ? sqliteDataKeys(database.path) : postgresDataKeys(postgresUrl ?? "", schema ?? "");
    newUser = createUsers(keyport, `dk-${dialect}`);
  });
  afterAll(async () => {
    await keyport?.close();
    await mock?.close();
    if (schema !== undefined && postgresUrl !== undefined) await dropTestSchema(postgresUrl, schema);
  });

  async function keyIds(user: TestUser): Promise<string[]> {
    const listed = await keyport.request("GET", "/api/v1/api-keys", { token: user.token });
    expect(listed.status, listed.text).toBe(200);
    return (listed.body.keys as { id: string }[]).map((key) => key.id);
  }

  it("a missing data-key row: the gateway answers 409 key_undecryptable instead of using the platform key; the key is marked and audited", async () => {
    const user = await newUser("premium");
    const { id } = await storeKey(keyport, user, "openai");
    const wrapped = await table.read(user.owner);
    expect(wrapped).toBeDefined();
    await table.remove(user.owner);
    mock.clearRequests();

    for (let attempt = 0; attempt < 2; attempt += 1) {
      const call = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, body: CHAT });
      expect(call.status, call.text).toBe(409);
      expect(call.body.error).toMatchObject({ code: "key_undecryptable" });
      expect(call.headers.get("x-keyport-key-source")).not.toBe("platform");
    }
    expect(upstreamRequests(mock, { key: keyport.platformKeys.openai ?? "" })).toEqual([]);
    expect(mock.requests()).toEqual([]);

    const view = await keyView(keyport, user, id);
    expect(view).toMatchObject({ status: "undecryptable", statusDetail: expect.stringMatching(/data key.*missing/i) });
    expect((await auditTypes(keyport, user)).filter((type) => type === "key.undecryptable")).toHaveLength(1);
    expect(await table.count(user.owner)).toBe(0);
  });

  it("a missing data-key row: test, create and replace answer 409 and never make a new data key; restoring the row brings the key back", async () => {
    const user = await newUser("premium");
    const { id } = await storeKey(keyport, user, "openai");
    const wrapped = (await table.read(user.owner)) ?? "";
    await table.remove(user.owner);
    mock.clearRequests();

    const tested = await keyport.request("POST", `/api/v1/api-keys/${id}/test`, { token: user.token });
    expect(tested.status, tested.text).toBe(409);
    expect(tested.body.error).toMatchObject({ code: "key_undecryptable" });
    expect(await table.count(user.owner)).toBe(0);

    const second = openAiKey();
    mock.setKey(second, "valid");
    const created = await keyport.request("POST", "/api/v1/api-keys", { token: user.token, body: { provider: "openai", apiKey: second } });
    expect(created.status, created.text).toBe(409);
    expect(created.body.error).toMatchObject({ code: "key_undecryptable" });
    expect(created.body.error.message).toMatch(/data key/i);
    expect(created.text).not.toContain(second);
    expect(await table.count(user.owner)).toBe(0);

    const replaced = await keyport.request("PUT", `/api/v1/api-keys/${id}/secret`, { token: user.token, body: { apiKey: second } });
    expect(replaced.status, replaced.text).toBe(409);
    expect(replaced.body.error).toMatchObject({ code: "key_undecryptable" });
    expect(await table.count(user.owner)).toBe(0);

    // Nothing reached the provider and nothing was stored.
    expect(mock.requests()).toEqual([]);
    expect(await keyIds(user)).toEqual([id]);
    expect(await keyView(keyport, user, id)).toMatchObject({ status: "undecryptable" });
    expect((await auditTypes(keyport, user)).filter((type) => type === "key.undecryptable")).toHaveLength(1);

    // The operator restores the row from a backup: the original ciphertext opens again.
    await table.write(user.owner, wrapped);
    const retested = await keyport.request("POST", `/api/v1/api-keys/${id}/test`, { token: user.token });
    expect(retested.status, retested.text).toBe(200);
    expect(retested.body).toMatchObject({ result: "valid", key: { status: "valid" } });
    const call = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, body: CHAT });
    expect(call.status, call.text).toBe(200);
    expect(call.headers.get("x-keyport-key-source")).toBe("byok");
  });

  it("an owner without stored keys still gets a data key on the first create", async () => {
    const user = await newUser("premium");
    expect(await table.count(user.owner)).toBe(0);
    await storeKey(keyport, user, "openai");
    expect(await table.count(user.owner)).toBe(1);
  });

  it.for([
    ["a corrupted", async (_owner: string, wrapped: string) => corrupt(wrapped)],
    ["another owner's", async () => (await table.read((await storeKeyForNewUser()).owner)) ?? ""],
  ] as const)("%s wrapped data key: create answers 409 key_undecryptable, not 500, and writes nothing", async ([, replacement]) => {
    const user = await newUser("premium");
    const { id } = await storeKey(keyport, user, "openai");
    const wrapped = (await table.read(user.owner)) ?? "";
    const broken = await replacement(user.owner, wrapped);
    expect(broken).not.toBe(wrapped);
    await table.write(user.owner, broken);
    const auditBefore = await auditTypes(keyport, user);
    mock.clearRequests();

    const second = openAiKey();
    mock.setKey(second, "valid");
    const headers = { "idempotency-key": `dk-${Date.now().toString(36)}` };
    const body = { provider: "openai", apiKey: second };
    const created = await keyport.request("POST", "/api/v1/api-keys", { token: user.token, body, headers });
    expect(created.status, created.text).toBe(409);
    expect(created.body.error).toMatchObject({ code: "key_undecryptable" });
    expect(created.text).not.toContain(second);

    expect(mock.requests()).toEqual([]);
    expect(await keyIds(user)).toEqual([id]);
    expect(await table.read(user.owner)).toBe(broken);
    expect(await keyView(keyport, user, id)).toMatchObject({ status: "undecryptable", statusDetail: expect.stringMatching(/data key/i) });
    const auditAfter = await auditTypes(keyport, user);
    expect(auditAfter.slice(0, auditAfter.length - auditBefore.length)).toEqual(["key.undecryptable"]);

    // The same Idempotency-Key works once the data key is restored: no claim was left behind.
    await table.write(user.owner, wrapped);
    const retried = await keyport.request("POST", "/api/v1/api-keys", { token: user.token, body, headers });
    expect(retried.status, retried.text).toBe(201);
  });

  async function storeKeyForNewUser(): Promise<TestUser> {
    const other = await newUser("premium");
    await storeKey(keyport, other, "openai");
    return other;
  }
}

describe("data-key loss on sqlite", () => runDataKeyLossSuite("sqlite"));

await describePostgres("data-key loss on postgres", (url) => runDataKeyLossSuite("postgres", url));
