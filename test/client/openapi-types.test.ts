import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKeyport, type TestKeyport } from "../support/harness.js";

/**
 * The typed client's types are generated from the OpenAPI document Keyport serves, and must stay
 * what it serves: this test regenerates them and compares with `src/client/api-types.ts`. When
 * it fails, the API changed: run `npm run generate:client` and commit the new file.
 */
describe("keyport/client types", () => {
  let keyport: TestKeyport;
  let document: { paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>> };

  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_ADMIN_TOKEN: "a".repeat(40) } });
    const response = await keyport.request("GET", "/openapi.json");
    expect(response.status).toBe(200);
    document = response.body;
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("are generated from /openapi.json (run `npm run generate:client` after an API change)", async () => {
    const types = COMMENT_HEADER + astToString(await openapiTS(document as never, { alphabetize: true, silent: true }));
    await expect(types).toMatchFileSnapshot("../../src/client/api-types.ts");
  });

  it("has an operationId on every operation, each one different", () => {
    const ids: string[] = [];
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        expect(operation.operationId, `${method.toUpperCase()} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        ids.push(operation.operationId ?? "");
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("names every JSON response schema (a $ref into components.schemas)", () => {
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          const schema = (response as { content?: Record<string, { schema?: { $ref?: string } }> }).content?.["application/json"]?.schema;
          if (schema === undefined) continue;
          expect(schema.$ref, `${method.toUpperCase()} ${path} ${status}`).toMatch(/^#\/components\/schemas\/[A-Z]\w+$/);
        }
      }
    }
  });
});
