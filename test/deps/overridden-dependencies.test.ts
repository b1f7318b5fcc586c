import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fastifyStatic from "@fastify/static";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKeyport, type TestKeyport } from "../support/harness.js";

/**
 * package.json `overrides` pin two transitive packages to the last majors that declare Node 20
 * (`cookie` 1 under light-my-request, `content-disposition` 2 under @fastify/static; their newer
 * majors ask for Node 22). These tests run the code paths of the dependents that use them.
 */

describe("cookie under light-my-request (Fastify's inject)", () => {
  it("serialises the cookies of an injected request", async () => {
    const app = Fastify();
    app.get("/", async (request) => ({ cookie: request.headers.cookie }));
    try {
      const response = await app.inject({ method: "GET", url: "/", cookies: { session: "abc", note: "a b;c" } });
      expect(response.json()).toEqual({ cookie: "session=abc; note=a%20b%3Bc" });
    } finally {
      await app.close();
    }
  });
});

describe("content-disposition under @fastify/static", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), "keyport-static-"));
    writeFileSync(path.join(root, "report.csv"), "a,b\n");
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("names a downloaded file, plain and with non-ASCII characters", async () => {
    const app = Fastify();
    await app.register(fastifyStatic, { root, serve: false });
    app.get("/plain", (_request, reply) => reply.download("report.csv"));
    app.get("/named", (_request, reply) => reply.download("report.csv", "rapport-été.csv"));
    try {
      const plain = await app.inject({ method: "GET", url: "/plain" });
      expect(plain.statusCode).toBe(200);
      // A token or a quoted string: RFC 6266 allows both.
      expect(plain.headers["content-disposition"]).toMatch(/^attachment; filename=("?)report\.csv\1$/);
      expect(plain.body).toBe("a,b\n");
      const named = await app.inject({ method: "GET", url: "/named" });
      expect(named.headers["content-disposition"]).toMatch(/^attachment; filename=.*; filename\*=UTF-8''rapport-%C3%A9t%C3%A9\.csv$/);
    } finally {
      await app.close();
    }
  });
});

describe("the API documentation page (@fastify/swagger-ui serves its files through @fastify/static)", () => {
  let keyport: TestKeyport;
  beforeAll(async () => {
    keyport = await startKeyport();
  });
  afterAll(async () => keyport.close());

  it("serves /docs and its script and style sheet", async () => {
    const page = await keyport.request("GET", "/docs/static/index.html");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    for (const [file, type] of [["swagger-ui-bundle.js", /javascript/], ["swagger-ui.css", /^text\/css/]] as const) {
      const asset = await keyport.request("GET", `/docs/static/${file}`);
      expect(asset.status, file).toBe(200);
      expect(asset.headers.get("content-type")).toMatch(type);
      expect(asset.text.length).toBeGreaterThan(1000);
    }
    expect((await keyport.request("GET", "/docs/static/no-such-file.js")).status).toBe(404);
  });
});
