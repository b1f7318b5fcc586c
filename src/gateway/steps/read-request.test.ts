import { describe, expect, it } from "vitest";
import { AppError } from "../../lib/errors.js";
import { isJsonContentType, requireJsonContentType } from "./read-request.js";

describe("isJsonContentType", () => {
  it.each(["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;charset="UTF-8"', "application/vnd.api+json", "application/json; foo=bar"])(
    "accepts %s",
    (value) => expect(isJsonContentType(value)).toBe(true),
  );

  it.each(["text/plain", "application/json; charset=utf-16", "application/json; charset=latin1", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "json"])(
    "refuses %s",
    (value) => expect(isJsonContentType(value)).toBe(false),
  );
});

describe("requireJsonContentType", () => {
  it("takes a body without content-type as JSON and refuses another type with 415", () => {
    expect(() => requireJsonContentType(undefined)).not.toThrow();
    expect(() => requireJsonContentType("text/plain")).toThrow(AppError);
    try {
      requireJsonContentType("text/plain");
    } catch (error) {
      expect(error).toMatchObject({ code: "unsupported_media_type", status: 415 });
    }
  });
});
