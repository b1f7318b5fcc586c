import { describe, expect, it } from "vitest";
import { createSessionCookie } from "./session-cookie.js";

describe("the portal session cookie", () => {
  it("is HttpOnly and SameSite=Strict, Secure with the __Host- prefix when it must be", () => {
    expect(createSessionCookie({ secureCookie: false, frameAncestors: [] }).serialize("abc", 60)).toBe(
      "keyport_session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Strict",
    );
    const secure = createSessionCookie({ secureCookie: true, frameAncestors: [] });
    expect(secure.serialize("abc", 60)).toBe("__Host-keyport_session=abc; Max-Age=60; Path=/; HttpOnly; Secure; SameSite=Strict");
    expect(secure.clear()).toBe("__Host-keyport_session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict");
  });

  it("is SameSite=None and partitioned when the page may be framed", () => {
    expect(createSessionCookie({ secureCookie: true, frameAncestors: ["https://app.example.com"] }).serialize("abc", 60)).toBe(
      "__Host-keyport_session=abc; Max-Age=60; Path=/; HttpOnly; Secure; SameSite=None; Partitioned",
    );
  });

  it("reads its own cookie among others, and nothing from a look-alike name", () => {
    const cookie = createSessionCookie({ secureCookie: false, frameAncestors: [] });
    expect(cookie.read("theme=dark; keyport_session=tok_1 ; other=x")).toBe("tok_1");
    expect(cookie.read("xkeyport_session=evil; keyport_sessions=evil")).toBeUndefined();
    expect(cookie.read(undefined)).toBeUndefined();
    // The secure variant never reads the plain name, which a sibling subdomain could have set.
    expect(createSessionCookie({ secureCookie: true, frameAncestors: [] }).read("keyport_session=planted")).toBeUndefined();
  });
});
