import { afterAll, beforeAll, expect, it } from "vitest";
import { DependencyUnavailableError } from "../../src/lib/errors.js";
import type { Store } from "../../src/store/ports.js";
import { createPostgresStore } from "../../src/store/postgres/create-postgres-store.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * The PostgreSQL store on a link the test breaks: a connection that cannot be opened or is lost
 * under a query is a `DependencyUnavailableError` (503 with retry-after), the process survives
 * it, and the pool recovers once the server answers again.
 */
await describePostgres("PostgreSQL store on a broken link", (postgresUrl) => {
  const schema = createTestSchemaName();
  let link: TcpProxy;
  let store: Store;
  const poolErrors: Error[] = [];

  beforeAll(async () => {
    link = await startTcpProxy(new URL(postgresUrl).host);
    store = await createPostgresStore({ url: link.urlFor(postgresUrl), schema, onPoolError: (error) => poolErrors.push(error) });
  });
  afterAll(async () => {
    link?.restore();
    link?.resume();
    await store?.close();
    await link?.close();
    await dropTestSchema(postgresUrl, schema);
  });

  it("fails a query whose connection is lost under it with DependencyUnavailableError, and the process lives on", async () => {
    await store.ping();
    link.pause();
    const pinging = failureOf(store.ping());
    // The query is on the wire, its client checked out of the pool: now the connection dies.
    await new Promise((resolve) => setTimeout(resolve, 100));
    link.cut();
    const failure = await pinging;
    expect(failure).toBeInstanceOf(DependencyUnavailableError);
    expect(failure).toMatchObject({ code: "unavailable", dependency: "database", headers: { "retry-after": "5" } });
    expect(poolErrors.length).toBeGreaterThan(0);
  });

  it("fails at once while no connection can be opened, and recovers when the server answers again", async () => {
    link.cut();
    link.resume();
    const failure = await failureOf(store.keys.list("user:nobody"));
    expect(failure).toBeInstanceOf(DependencyUnavailableError);
    expect((failure as DependencyUnavailableError).internal).toMatchObject({ backend: "database" });
    link.restore();
    expect(await store.keys.list("user:nobody")).toEqual([]);
  });
});
