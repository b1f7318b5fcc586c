import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";

const ADMIN_TOKEN = "operator-token-for-tests-0123456789abcdef";

const started: TestKeyport[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((keyport) => keyport.close()));
});

async function start(options: Parameters<typeof startKeyport>[0] = {}): Promise<TestKeyport> {
  const keyport = await startKeyport({ ...options, env: { KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN, ...options.env } });
  started.push(keyport);
  return keyport;
}

/** A clock the test moves forward. */
function movableClock() {
  let offsetMs = 0;
  return { now: () => new Date(Date.now() + offsetMs), advance: (ms: number) => (offsetMs += ms) };
}

async function createLink(keyport: TestKeyport, body: Record<string, unknown> = {}): Promise<{ url: string; expiresAt: string }> {
  const response = await keyport.request("POST", "/api/v1/portal-sessions", {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { sub: "alice", tier: "premium", returnUrl: "https://app.example.com/settings", ...body },
  });
  expect(response.status, response.text).toBe(201);
  return response.body;
}

/** Opens a link without following the redirect; returns the response and the session cookie. */
async function openLink(url: string): Promise<{ response: Response; cookie: string | undefined; setCookie: string | null }> {
  const response = await fetch(url, { redirect: "manual" });
  const setCookie = response.headers.get("set-cookie");
  return { response, cookie: setCookie?.split(";")[0], setCookie };
}

async function session(keyport: TestKeyport, body: Record<string, unknown> = {}) {
  const link = await createLink(keyport, body);
  const { cookie } = await openLink(link.url);
  if (cookie === undefined) throw new Error("no session cookie");
  const current = await keyport.request("GET", "/api/v1/portal-sessions/current", { headers: { cookie } });
  expect(current.status, current.text).toBe(200);
  return { cookie, csrfToken: current.body.csrfToken as string, current: current.body };
}

describe("POST /api/v1/portal-sessions (operator)", () => {
  it("is off without KEYPORT_ADMIN_TOKEN, and refuses a wrong token and a user's JWT", async () => {
    const off = await startKeyport({});
    started.push(off);
    const refused = await off.request("POST", "/api/v1/portal-sessions", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: { sub: "alice" } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("forbidden");

    const keyport = await start();
    for (const authorization of [undefined, "Bearer wrong-token-wrong-token-wrong-token", `Bearer ${await keyport.token("alice", { tier: "premium" })}`]) {
      const response = await keyport.request("POST", "/api/v1/portal-sessions", {
        ...(authorization === undefined ? {} : { headers: { authorization } }),
        body: { sub: "alice" },
      });
      expect(response.status, response.text).toBe(401);
      expect(response.body.error.code).toBe("unauthenticated");
    }
  });

  it("returns a one-time link on the request's origin and its expiry, a few minutes ahead", async () => {
    const keyport = await start();
    const before = Date.now();
    const link = await createLink(keyport);
    expect(link.url).toMatch(new RegExp(`^${keyport.url}/portal/open/[A-Za-z0-9_-]{43}$`));
    const expiresInMs = Date.parse(link.expiresAt) - before;
    expect(expiresInMs).toBeGreaterThan(290_000);
    expect(expiresInMs).toBeLessThan(310_000);
  });

  it("builds the link on KEYPORT_PUBLIC_URL when it is set", async () => {
    const keyport = await start({ env: { KEYPORT_PUBLIC_URL: "https://keyport.example.com" } });
    expect((await createLink(keyport)).url).toMatch(/^https:\/\/keyport\.example\.com\/portal\/open\//);
  });

  it.each([
    ["an unknown tier", { tier: "gold" }, /tier "gold" is not a configured tier/],
    ["a bad owner", { owner: "team:x" }, /owner/],
    ["a bad sub", { sub: "not a sub" }, /sub/],
    ["a javascript: return URL", { returnUrl: "javascript:alert(1)" }, /returnUrl must be an http\(s\) URL/],
    ["a return URL with credentials", { returnUrl: "https://user:pw@app.example.com/" }, /returnUrl/],
    ["an accent colour that is not #rrggbb", { theme: { accentColor: "red;background:url(x)" } }, /accentColor/],
    ["an unknown field", { admin: true }, /additional properties/],
  ])("refuses %s with 400 naming the field", async (_name, body, message) => {
    const keyport = await start();
    const response = await keyport.request("POST", "/api/v1/portal-sessions", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { sub: "alice", ...body },
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body.error.message).toMatch(message);
  });
});

describe("opening a portal link", () => {
  it("sets an HttpOnly SameSite=Strict session cookie and redirects to the page, once", async () => {
    const keyport = await start();
    const link = await createLink(keyport);
    const first = await openLink(link.url);
    expect(first.response.status).toBe(303);
    expect(first.response.headers.get("location")).toBe("/portal/");
    expect(first.response.headers.get("cache-control")).toBe("no-store");
    expect(first.response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(first.setCookie).toMatch(/^keyport_session=[A-Za-z0-9_-]{43}; Max-Age=3600; Path=\/; HttpOnly; SameSite=Strict$/);

    const again = await openLink(link.url);
    expect(again.response.status).toBe(410);
    expect(again.setCookie).toBeNull();
    const page = await again.response.text();
    expect(page).toContain("This link was already used");
    expect(page).toContain('href="https://app.example.com/settings"');
    expect(page).not.toMatch(/<script/i);
  });

  it("refuses an expired link with its return URL, and an unknown one", async () => {
    const clock = movableClock();
    const keyport = await start({ clock });
    const link = await createLink(keyport, { returnUrl: "https://app.example.com/a?b=<c>" });
    clock.advance(301_000);
    const expired = await openLink(link.url);
    expect(expired.response.status).toBe(410);
    const page = await expired.response.text();
    expect(page).toContain("This link has expired");
    // The return URL is escaped, never markup.
    expect(page).toContain('href="https://app.example.com/a?b=%3Cc%3E"');

    const unknown = await openLink(`${keyport.url}/portal/open/${"A".repeat(43)}`);
    expect(unknown.response.status).toBe(404);
    expect(await unknown.response.text()).toContain("This link is not valid");
  });

  it("opens exactly once when ten openings race", async () => {
    const keyport = await start();
    const link = await createLink(keyport);
    const results = await Promise.all(Array.from({ length: 10 }, () => openLink(link.url)));
    expect(results.map((result) => result.response.status).sort()).toEqual([303, ...Array<number>(9).fill(410)]);
  });

  it("uses a __Host- Secure cookie in production, and SameSite=None; Partitioned when framing is allowed", async () => {
    const production = await start({ env: { NODE_ENV: "production" } });
    expect((await openLink((await createLink(production)).url)).setCookie).toMatch(
      /^__Host-keyport_session=[\w-]{43}; Max-Age=3600; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
    );
    const framed = await start({ env: { KEYPORT_FRAME_ANCESTORS: "https://app.example.com" } });
    const opened = await openLink((await createLink(framed)).url);
    expect(opened.setCookie).toMatch(/; HttpOnly; Secure; SameSite=None; Partitioned$/);
    expect(opened.response.headers.get("content-security-policy")).toContain("frame-ancestors https://app.example.com");
    expect(opened.response.headers.get("x-frame-options")).toBeNull();
  });
});

describe("the portal session on /api/v1", () => {
  it("reads only its own owner's keys, with the plan and tier the operator gave", async () => {
    const keyport = await start();
    const providerKey = openAiKey();
    keyport.mock.setKey(providerKey, "valid");
    const aliceToken = await keyport.token("alice", { tier: "premium" });
    const created = await keyport.request("POST", "/api/v1/api-keys", { token: aliceToken, body: { provider: "openai", apiKey: providerKey } });
    expect(created.status, created.text).toBe(201);

    const alice = await session(keyport, { sub: "alice", tier: "premium" });
    expect(alice.current).toMatchObject({ owner: "user:alice", sub: "alice", tier: "premium", returnUrl: "https://app.example.com/settings" });
    const listed = await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: alice.cookie } });
    expect(listed.status).toBe(200);
    expect(listed.body.keys.map((key: { id: string }) => key.id)).toEqual([created.body.id]);
    expect(listed.body.plan).toMatchObject({ tier: "premium", byokAllowed: true });

    const bob = await session(keyport, { sub: "bob", tier: "community" });
    expect((await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: bob.cookie } })).body.keys).toEqual([]);
    const stolen = await keyport.request("GET", `/api/v1/api-keys/${created.body.id}`, { headers: { cookie: bob.cookie } });
    expect(stolen.status).toBe(404);
    const deleted = await keyport.request("DELETE", `/api/v1/api-keys/${created.body.id}`, {
      headers: { cookie: bob.cookie, origin: keyport.url, "x-csrf-token": bob.csrfToken },
    });
    expect(deleted.status).toBe(404);
  });

  it("refuses a write without the CSRF token, with another session's token, or from another origin", async () => {
    const keyport = await start();
    const alice = await session(keyport, { sub: "alice" });
    const other = await session(keyport, { sub: "alice" });
    const body = { provider: "openai", apiKey: openAiKey() };
    const attempts: Record<string, string>[] = [
      { origin: keyport.url },
      { origin: keyport.url, "x-csrf-token": other.csrfToken },
      { origin: "https://evil.example", "x-csrf-token": alice.csrfToken },
      { "x-csrf-token": alice.csrfToken },
    ];
    for (const headers of attempts) {
      const response = await keyport.request("POST", "/api/v1/api-keys", { headers: { cookie: alice.cookie, ...headers }, body });
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(response.body.error.code).toBe("forbidden");
    }
    expect(keyport.mock.requests()).toEqual([]);
    const listed = await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: alice.cookie } });
    expect(listed.body.keys).toEqual([]);

    keyport.mock.setKey(body.apiKey, "valid");
    const allowed = await keyport.request("POST", "/api/v1/api-keys", {
      headers: { cookie: alice.cookie, origin: keyport.url, "x-csrf-token": alice.csrfToken },
      body,
    });
    expect(allowed.status, allowed.text).toBe(201);
  });

  it("answers 401 for an unknown or ended session, and signing out ends it", async () => {
    const keyport = await start();
    const unknown = await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: `keyport_session=${"B".repeat(43)}` } });
    expect(unknown.status).toBe(401);

    const alice = await session(keyport);
    const ended = await keyport.request("DELETE", "/api/v1/portal-sessions/current", {
      headers: { cookie: alice.cookie, origin: keyport.url, "x-csrf-token": alice.csrfToken },
    });
    expect(ended.status).toBe(204);
    expect(ended.headers.get("set-cookie")).toMatch(/^keyport_session=; Max-Age=0;/);
    expect((await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: alice.cookie } })).status).toBe(401);
  });

  it("expires with its lifetime", async () => {
    const clock = movableClock();
    const keyport = await start({ clock, env: { KEYPORT_PORTAL_SESSION_TTL_SECONDS: "600" } });
    const alice = await session(keyport);
    clock.advance(601_000);
    expect((await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie: alice.cookie } })).status).toBe(401);
  });

  it("has no current portal session for a JWT caller; a JWT still wins over a cookie", async () => {
    const keyport = await start();
    const token = await keyport.token("carol", { tier: "premium" });
    expect((await keyport.request("GET", "/api/v1/portal-sessions/current", { token })).status).toBe(404);
    const alice = await session(keyport, { sub: "alice" });
    const listed = await keyport.request("GET", "/api/v1/api-keys", { token, headers: { cookie: alice.cookie } });
    expect(listed.body.plan.tier).toBe("premium");
    expect((await keyport.request("GET", "/api/v1/portal-sessions/current", { token, headers: { cookie: alice.cookie } })).status).toBe(404);
  });
});

await describePostgres("portal sessions across instances", (postgresUrl) => {
  it("a link made on one instance opens on another, and the session works on both", async () => {
    const schema = createTestSchemaName();
    const env = { ENCRYPTION_KEY: randomBytes(32).toString("hex"), KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url") };
    try {
      const first = await start({ dialect: "postgres", postgresSchema: schema, env });
      const second = await start({ dialect: "postgres", postgresSchema: schema, mock: first.mock, env });
      const link = await createLink(first);
      const opened = await openLink(link.url.replace(first.url, second.url));
      expect(opened.response.status).toBe(303);
      expect((await openLink(link.url)).response.status).toBe(410);
      const cookie = opened.cookie ?? "";
      for (const keyport of [first, second]) {
        expect((await keyport.request("GET", "/api/v1/api-keys", { headers: { cookie } })).status).toBe(200);
      }
    } finally {
      await Promise.all(started.splice(0).map((keyport) => keyport.close()));
      await dropTestSchema(postgresUrl, schema);
    }
  });
});
