import { describe, expect, it } from "vitest";
import { readBearerToken } from "./read-credential.js";

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
const gateway = { allowXApiKey: true };
const management = { allowXApiKey: false };

describe("readBearerToken from Authorization", () => {
  it.each(["Bearer", "bearer", "BEARER", "bEaReR"])("reads the %s scheme", (scheme) => {
    expect(readBearerToken({ authorization: `${scheme} ${JWT}` }, management)).toBe(JWT);
  });

  it.each([
    ["no scheme", JWT],
    ["another scheme", `Basic ${JWT}`],
    ["a scheme only", "Bearer"],
    ["an empty token", "Bearer "],
    ["two spaces", `Bearer  ${JWT}`],
    ["a tab", `Bearer\t${JWT}`],
    ["two tokens", `Bearer ${JWT} ${JWT}`],
    ["a trailing space", `Bearer ${JWT} `],
    ["a comma-joined duplicate", `Bearer ${JWT},Bearer other`],
    ["a line break", `Bearer ${JWT}\r\nX-Injected: 1`],
    ["a non-breaking space", `Bearer\u00a0${JWT}`],
    ["a non-ASCII token", "Bearer tökén"],
    ["an empty header", ""],
  ])("refuses %s", (_name, authorization) => {
    expect(readBearerToken({ authorization }, gateway)).toBeUndefined();
  });

  it("refuses repeated headers", () => {
    expect(readBearerToken({ authorization: [`Bearer ${JWT}`, "Bearer other"] }, management)).toBeUndefined();
    expect(readBearerToken({ authorization: [`Bearer ${JWT}`] }, management)).toBeUndefined();
  });

  it("returns undefined when there is no credential", () => {
    expect(readBearerToken({}, gateway)).toBeUndefined();
    expect(readBearerToken({ authorization: undefined, "x-api-key": undefined }, gateway)).toBeUndefined();
  });
});

describe("readBearerToken from x-api-key", () => {
  it("reads x-api-key on gateway routes", () => {
    expect(readBearerToken({ "x-api-key": JWT }, gateway)).toBe(JWT);
  });

  it("ignores x-api-key where it is not allowed", () => {
    expect(readBearerToken({ "x-api-key": JWT }, management)).toBeUndefined();
    expect(readBearerToken({ authorization: `Bearer ${JWT}`, "x-api-key": "other" }, management)).toBe(JWT);
  });

  it.each([
    ["an empty value", ""],
    ["a joined duplicate", `${JWT}, other`],
    ["a value with a space", "two words"],
    ["a Bearer prefix", `Bearer ${JWT}`],
  ])("refuses %s", (_name, apiKey) => {
    expect(readBearerToken({ "x-api-key": apiKey }, gateway)).toBeUndefined();
  });

  it("refuses repeated x-api-key headers", () => {
    expect(readBearerToken({ "x-api-key": [JWT, "other"] }, gateway)).toBeUndefined();
  });

  it("accepts both headers when they carry the same token", () => {
    expect(readBearerToken({ authorization: `Bearer ${JWT}`, "x-api-key": JWT }, gateway)).toBe(JWT);
  });

  it("refuses both headers when they disagree, or when Authorization is unreadable", () => {
    expect(readBearerToken({ authorization: `Bearer ${JWT}`, "x-api-key": "other" }, gateway)).toBeUndefined();
    expect(readBearerToken({ authorization: `Basic ${JWT}`, "x-api-key": JWT }, gateway)).toBeUndefined();
  });
});
