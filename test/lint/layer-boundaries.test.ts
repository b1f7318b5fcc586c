import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";
import { LAYERS, renderLayerTable } from "../../lint/layers.js";

/**
 * The layer rules of docs/architecture.md, run through ESLint as `npm test` runs it: a bad import
 * is an error, a file no layer claims is an error, and the page shows the table the rules are
 * built from.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

type Problem = { ruleId: string | null; message: string };

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT });
});

/** Lints `code` as if it were the file at `filePath` (relative to the repository root). */
async function boundaryProblems(filePath: string, code: string): Promise<Problem[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, filePath) });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId?.startsWith("boundaries/") === true || message.fatal === true)
    .map(({ ruleId, message }) => ({ ruleId, message }));
}

describe("layer boundaries", () => {
  it("refuses lib/ importing gateway/pipeline", async () => {
    const problems = await boundaryProblems(
      "src/lib/layer-fixture.ts",
      'import { createProxy } from "../gateway/pipeline.js";\nexport const proxy = createProxy;\n',
    );
    expect(problems).toEqual([
      { ruleId: "boundaries/dependencies", message: expect.stringMatching(/category "lib" to file of category "gateway"/) },
    ]);
  });

  it("lets lib/ import lib/", async () => {
    const problems = await boundaryProblems("src/lib/layer-fixture.ts", 'import { AppError } from "./errors.js";\nexport const error = AppError;\n');
    expect(problems).toEqual([]);
  });

  it.each([
    ["gateway/ a concrete store", "src/gateway/layer-fixture.ts", 'import { createSqliteStore } from "../store/sqlite/create-sqlite-store.js";\nexport const open = createSqliteStore;\n'],
    ["gateway/ a dynamic import of redis/", "src/gateway/layer-fixture.ts", 'export const load = () => import("../redis/connect-redis.js");\n'],
    ["cache/ re-exporting api/", "src/cache/layer-fixture.ts", 'export * from "../api/schemas.js";\n'],
    ["usage/ the vault", "src/usage/layer-fixture.ts", 'import type { KeyService } from "../vault/key-service.js";\nexport type Service = KeyService;\n'],
    ["limits/ a file that does not exist", "src/limits/layer-fixture.ts", 'import { nothing } from "../nowhere/nothing.js";\nexport const value = nothing;\n'],
    ["vault/ the HTTP framework", "src/vault/layer-fixture.ts", 'import type { FastifyInstance } from "fastify";\nexport type Server = FastifyInstance;\n'],
    ["limits/ (not its Redis adapter) ioredis", "src/limits/layer-fixture.ts", 'import type { Redis } from "ioredis";\nexport type Client = Redis;\n'],
    ["store/ports.ts a database driver", "src/store/ports.ts", 'import type { Kysely } from "kysely";\nexport type Db = Kysely<unknown>;\n'],
  ])("refuses %s", async (_name, filePath, code) => {
    const problems = await boundaryProblems(filePath, code);
    expect(problems.map((problem) => problem.ruleId)).toEqual(["boundaries/dependencies"]);
  });

  it("refuses a file in a folder of src/ that no layer claims", async () => {
    const problems = await boundaryProblems("src/unclaimed/layer-fixture.ts", "export const value = 1;\n");
    expect(problems.map((problem) => problem.ruleId)).toEqual(["boundaries/no-unknown-files"]);
  });

  it("leaves tests free to wire adapters together", async () => {
    const problems = await boundaryProblems(
      "src/lib/layer-fixture.test.ts",
      'import { createProxy } from "../gateway/pipeline.js";\nexport const proxy = createProxy;\n',
    );
    expect(problems).toEqual([]);
  });
});

describe("the layer table", () => {
  it("is what docs/architecture.md shows", () => {
    const page = readFileSync(path.join(ROOT, "docs/architecture.md"), "utf8");
    const shown = /<!-- layers:begin[^>]*-->\n([\s\S]*?)\n<!-- layers:end -->/.exec(page)?.[1];
    expect(shown, `docs/architecture.md must show, between the layers markers:\n${renderLayerTable()}`).toBe(renderLayerTable());
  });

  it("names only layers it defines", () => {
    const names = new Set(LAYERS.map((row) => row.layer));
    expect(names.size).toBe(LAYERS.length);
    for (const row of LAYERS) for (const target of row.mayImport) if (target !== "*") expect(names, `${row.layer} → ${target}`).toContain(target);
  });
});
