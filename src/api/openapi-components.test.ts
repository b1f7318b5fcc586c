import { describe, expect, it } from "vitest";
import { nameSchemaComponents } from "./openapi-components.js";

const apiKey = { title: "ApiKey", type: "object", properties: { id: { type: "string" } } };

describe("nameSchemaComponents", () => {
  it("moves every titled object schema into components.schemas and refers to it, nested ones too", () => {
    const listing = { title: "ApiKeyListing", type: "object", properties: { keys: { type: "array", items: apiKey } } };
    const document = {
      openapi: "3.1.0",
      paths: {
        "/keys": { get: { responses: { 200: { content: { "application/json": { schema: listing } } } } } },
        "/keys/{id}": { get: { responses: { 200: { content: { "application/json": { schema: { ...apiKey } } } } } } },
      },
      components: { securitySchemes: { bearer: { type: "http" } } },
    };
    const named = nameSchemaComponents(document);
    expect(named.paths["/keys"].get.responses[200].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/ApiKeyListing" });
    expect(named.paths["/keys/{id}"].get.responses[200].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/ApiKey" });
    expect(named.components).toEqual({
      securitySchemes: { bearer: { type: "http" } },
      schemas: {
        ApiKey: apiKey,
        ApiKeyListing: { ...listing, properties: { keys: { type: "array", items: { $ref: "#/components/schemas/ApiKey" } } } },
      },
    });
  });

  it("leaves untitled schemas and non-object titles inline", () => {
    const document = { paths: { "/x": { get: { responses: { 200: { schema: { title: "Name", type: "string" } } } } } } };
    expect(nameSchemaComponents(document).paths).toEqual(document.paths);
  });

  it("refuses two different schemas under one title", () => {
    const other = { ...apiKey, properties: { id: { type: "integer" } } };
    const document = { paths: { "/a": { get: { schema: apiKey } }, "/b": { get: { schema: other } } } };
    expect(() => nameSchemaComponents(document)).toThrow("two different schemas are titled ApiKey");
  });
});
