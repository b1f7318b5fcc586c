import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKeyport, type StartOptions, type TestKeyport, type TestResponse } from "../support/harness.js";
import { anthropicKey, openAiKey, randomToken } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";

/**
 * Owner isolation, JWT attacks, concurrent activation and response hygiene of the management API,
 * over real HTTP.
 */

type Caller = { sub: string; owner: string; token: string };
type SigningKey = Parameters<SignJWT["sign"]>[0];

async function newCaller(keyport: TestKeyport, owner?: string): Promise<Caller> {
  const sub = `u-${randomToken(12)}`;
  return {
    sub,
    owner: owner ?? `user:${sub}`,
    token: await keyport.token(sub, owner === undefined ? {} : { owner }),
  };
}

async function storeKey(keyport: TestKeyport, caller: Caller, provider: "openai" | "anthropic", body: Record<string, unknown> = {}) {
  const apiKey = provider === "openai" ? openAiKey() : anthropicKey();
  keyport.mock.setKey(apiKey, "valid");
  const response = await keyport.request("POST", "/api/v1/api-keys", { token: caller.token, body: { provider, apiKey, ...body } });
  expect(response.status, response.text).toBe(201);
  return { id: response.body.id as string, apiKey, response };
}

function expectUnauthenticated(response: TestResponse): string {
  expect(response.status, response.text).toBe(401);
  expect(response.body).toEqual({
    error: { type: "authentication_error", code: "unauthenticated", message: expect.any(String), requestId: expect.any(String) },
  });
  return response.body.error.message as string;
}

/** A 404 body with its request id and the key id it names taken out, to compare shapes. */
function normalized404(response: TestResponse, id: string): unknown {
  expect(response.status, response.text).toBe(404);
  const error = response.body.error as Record<string, string>;
  return { ...error, requestId: "<request>", message: (error.message ?? "").split(id).join("<id>") };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

type TokenSpec = {
  alg?: string;
  key: SigningKey;
  sub?: string | null;
  /** Seconds from now; `null` leaves `exp` out. */
  expiresIn?: number | null;
  claims?: Record<string, unknown>;
  issuer?: string;
  audience?: string;
  notBeforeIn?: number;
};

/** Builds a token with jose, leaving out or bending exactly what the spec says. */
async function signToken(spec: TokenSpec): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = new SignJWT({ ...spec.claims }).setProtectedHeader({ alg: spec.alg ?? "HS256", typ: "JWT" }).setIssuedAt(now);
  if (spec.sub !== null) token.setSubject(spec.sub ?? `u-${randomToken(12)}`);
  if (spec.expiresIn !== null) token.setExpirationTime(now + (spec.expiresIn ?? 600));
  if (spec.issuer !== undefined) token.setIssuer(spec.issuer);
  if (spec.audience !== undefined) token.setAudience(spec.audience);
  if (spec.notBeforeIn !== undefined) token.setNotBefore(now + spec.notBeforeIn);
  return token.sign(spec.key);
}

/** An unsigned token (`alg: none` and friends), with the given or a stolen signature part. */
function unsignedToken(alg: string, sub: string, signature = ""): string {
  const now = Math.floor(Date.now() / 1000);
  return `${base64url({ alg, typ: "JWT" })}.${base64url({ sub, iat: now, exp: now + 600 })}.${signature}`;
}

/** Flips one character in the middle of the signature, so the decoded bytes surely change. */
function tamperSignature(token: string): string {
  const parts = token.split(".");
  const signature = parts[2] ?? "";
  const middle = Math.floor(signature.length / 2);
  const flipped = signature[middle] === "A" ? "B" : "A";
  return `${parts[0] ?? ""}.${parts[1] ?? ""}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`;
}

/** GET the key list with a bearer token. */
function listWith(keyport: TestKeyport, token: string): Promise<TestResponse> {
  return keyport.request("GET", "/api/v1/api-keys", { token });
}

describe("owner isolation", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport();
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("answers another owner's key ids exactly like missing ones and changes nothing", async () => {
    const owner = await newCaller(keyport);
    const intruder = await newCaller(keyport);
    const keys = [await storeKey(keyport, owner, "openai"), await storeKey(keyport, owner, "anthropic", { activate: false })];
    const ownerView = async () => ({
      list: (await keyport.request("GET", "/api/v1/api-keys", { token: owner.token })).text,
      items: await Promise.all(keys.map(async ({ id }) => (await keyport.request("GET", `/api/v1/api-keys/${id}`, { token: owner.token })).text)),
      audit: (await keyport.request("GET", "/api/v1/audit?limit=100", { token: owner.token })).text,
    });
    const before = await ownerView();
    keyport.mock.clearRequests();

    const replacement = openAiKey();
    keyport.mock.setKey(replacement, "valid");
    const attempts: Array<[string, (id: string) => string, unknown]> = [
      ["GET", (id) => `/api/v1/api-keys/${id}`, undefined],
      ["PATCH", (id) => `/api/v1/api-keys/${id}`, { label: "Taken over", isActive: true, monthlyLimitUsd: 0 }],
      ["PATCH", (id) => `/api/v1/api-keys/${id}`, { isActive: false }],
      ["PUT", (id) => `/api/v1/api-keys/${id}/secret`, { apiKey: replacement }],
      ["POST", (id) => `/api/v1/api-keys/${id}/test`, undefined],
      ["DELETE", (id) => `/api/v1/api-keys/${id}`, undefined],
    ];
    for (const { id } of keys) {
      for (const [method, routeOf, body] of attempts) {
        const bodyOption = body === undefined ? {} : { body };
        const missingId = `key_${randomToken(26)}`;
        const foreign = await keyport.request(method, routeOf(id), { token: intruder.token, ...bodyOption });
        const missing = await keyport.request(method, routeOf(missingId), { token: intruder.token, ...bodyOption });
        expect(normalized404(foreign, id), `${method} ${routeOf(id)}`).toEqual(normalized404(missing, missingId));
        expect(foreign.headers.get("content-type")).toBe(missing.headers.get("content-type"));
      }
    }
    // Ids that try to break out of the owner scope in the query are plain unknown ids.
    for (const id of ["%27%20OR%20%271%27%3D%271", "%25", "*", keys[0]?.id.toUpperCase() ?? ""]) {
      expect((await keyport.request("GET", `/api/v1/api-keys/${id}`, { token: intruder.token })).status).toBe(404);
    }

    const intruderList = await keyport.request("GET", "/api/v1/api-keys", { token: intruder.token });
    expect(intruderList.status).toBe(200);
    expect(intruderList.body.keys).toEqual([]);
    for (const provider of ["openai", "anthropic"]) {
      const filtered = await keyport.request("GET", `/api/v1/api-keys?provider=${provider}`, { token: intruder.token });
      expect(filtered.body.keys).toEqual([]);
    }
    expect(keyport.mock.requests()).toEqual([]);

    const after = await ownerView();
    expect(after).toEqual(before);
    const events = JSON.parse(after.audit) as { events: Array<{ actor: string }> };
    expect(events.events.map((event) => event.actor)).not.toContain(intruder.sub);
    const intruderAudit = await keyport.request("GET", "/api/v1/audit", { token: intruder.token });
    expect(intruderAudit.body).toEqual({ events: [], nextCursor: null });
  });

  it("lets another owner store the same plaintext without learning about the first owner's key", async () => {
    const owner = await newCaller(keyport);
    const other = await newCaller(keyport);
    const { id, apiKey } = await storeKey(keyport, owner, "openai");
    const response = await keyport.request("POST", "/api/v1/api-keys", { token: other.token, body: { provider: "openai", apiKey } });
    expect(response.status, response.text).toBe(201);
    expect(response.body.id).not.toBe(id);
    expect(response.text).not.toContain(id);
    const list = await keyport.request("GET", "/api/v1/api-keys", { token: other.token });
    expect((list.body.keys as Array<{ id: string }>).map((key) => key.id)).toEqual([response.body.id]);
  });

  it("shares a project's keys between its users and keeps them apart from each user's own keys", async () => {
    const project = `project:p-${randomToken(10)}`;
    const first = await newCaller(keyport, project);
    const second = await newCaller(keyport, project);
    const firstAlone = { ...first, owner: `user:${first.sub}`, token: await keyport.token(first.sub) };

    const shared = await storeKey(keyport, first, "openai");
    const secondList = await keyport.request("GET", "/api/v1/api-keys", { token: second.token });
    expect((secondList.body.keys as Array<{ id: string }>).map((key) => key.id)).toEqual([shared.id]);
    const renamed = await keyport.request("PATCH", `/api/v1/api-keys/${shared.id}`, { token: second.token, body: { label: "Team key" } });
    expect(renamed.status, renamed.text).toBe(200);
    expect((await keyport.request("GET", `/api/v1/api-keys/${shared.id}`, { token: first.token })).body.label).toBe("Team key");

    expect((await keyport.request("GET", "/api/v1/api-keys", { token: firstAlone.token })).body.keys).toEqual([]);
    expect((await keyport.request("GET", `/api/v1/api-keys/${shared.id}`, { token: firstAlone.token })).status).toBe(404);
    const patched = await keyport.request("PATCH", `/api/v1/api-keys/${shared.id}`, { token: firstAlone.token, body: { label: "Mine" } });
    expect(patched.status).toBe(404);

    const personal = await storeKey(keyport, firstAlone, "openai");
    const projectList = await keyport.request("GET", "/api/v1/api-keys", { token: second.token });
    expect((projectList.body.keys as Array<{ id: string }>).map((key) => key.id)).toEqual([shared.id]);
    expect((await keyport.request("GET", `/api/v1/api-keys/${personal.id}`, { token: second.token })).status).toBe(404);

    const projectAudit = await keyport.request("GET", "/api/v1/audit", { token: second.token });
    const actors = (projectAudit.body.events as Array<{ actor: string; keyId: string | null }>).map((event) => [event.actor, event.keyId]);
    expect(actors).toContainEqual([first.sub, shared.id]);
    expect(actors).toContainEqual([second.sub, shared.id]);
    expect(actors.map(([, keyId]) => keyId)).not.toContain(personal.id);
    const personalAudit = await keyport.request("GET", "/api/v1/audit", { token: firstAlone.token });
    expect((personalAudit.body.events as Array<{ keyId: string | null }>).map((event) => event.keyId)).not.toContain(shared.id);
  });
});

describe("JWT attacks with HS256 configured", () => {
  let keyport: TestKeyport;
  let secret: Uint8Array;
  let victim: Caller;
  let refusal: string;

  beforeAll(async () => {
    keyport = await startKeyport();
    secret = new TextEncoder().encode(keyport.env.KEYPORT_JWT_SECRET);
    victim = await newCaller(keyport);
    await storeKey(keyport, victim, "openai");
    refusal = expectUnauthenticated(await listWith(keyport, "garbage"));
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("accepts a well-formed token built the same way (control)", async () => {
    const response = await listWith(keyport, await signToken({ key: secret, sub: victim.sub }));
    expect(response.status, response.text).toBe(200);
    expect(response.body.keys).toHaveLength(1);
  });

  const attacks: Array<[string, () => Promise<string>]> = [
    ["alg none", async () => unsignedToken("none", victim.sub)],
    ["alg None", async () => unsignedToken("None", victim.sub)],
    ["alg none with a stolen signature", async () => unsignedToken("none", victim.sub, victim.token.split(".")[2] ?? "")],
    ["HS256 header over a valid token's payload with no signature", async () => victim.token.split(".").slice(0, 2).join(".") + "."],
    ["a tampered signature", async () => tamperSignature(victim.token)],
    ["an oversized token", async () => `${victim.token}.${"a".repeat(9000)}`],
    ["another secret", async () => signToken({ key: new TextEncoder().encode(randomToken(48)), sub: victim.sub })],
    ["HS512 with the right secret", async () => signToken({ alg: "HS512", key: secret, sub: victim.sub })],
    [
      "RS256",
      async () => signToken({ alg: "RS256", key: (await generateKeyPair("RS256")).privateKey, sub: victim.sub }),
    ],
    [
      "ES256",
      async () => signToken({ alg: "ES256", key: (await generateKeyPair("ES256")).privateKey, sub: victim.sub }),
    ],
    ["an expired token", async () => signToken({ key: secret, sub: victim.sub, expiresIn: -60 })],
    ["a token without exp", async () => signToken({ key: secret, sub: victim.sub, expiresIn: null })],
    ["a string exp", async () => signToken({ key: secret, sub: victim.sub, expiresIn: null, claims: { exp: "9999999999" } })],
    ["a token valid only from later", async () => signToken({ key: secret, sub: victim.sub, notBeforeIn: 600 })],
    ["a token without sub", async () => signToken({ key: secret, sub: null, claims: { owner: victim.owner } })],
    ["a sub with a space", async () => signToken({ key: secret, sub: "u 1" })],
    ["a numeric sub", async () => signToken({ key: secret, sub: null, claims: { sub: 42 } })],
    ["a tier of __proto__", async () => signToken({ key: secret, sub: victim.sub, claims: { tier: "__proto__" } })],
    ["an unknown tier", async () => signToken({ key: secret, sub: victim.sub, claims: { tier: "platinum" } })],
    ...(
      [
        ["admin"],
        ["user:"],
        ["user:a b"],
        ["project:../x"],
        ["team:x"],
        ["USER:x"],
        ["user:x\n"],
        [123],
        [["user:x"]],
        [null],
        [{ id: "x" }],
      ] as Array<[unknown]>
    ).map(([owner]): [string, () => Promise<string>] => [
      `an owner claim of ${JSON.stringify(owner)}`,
      async () => signToken({ key: secret, claims: { owner } }),
    ]),
  ];

  it.each(attacks)("refuses %s with the same 401", async (_name, build) => {
    const token = await build();
    const before = await listWith(keyport, victim.token);
    const response = await listWith(keyport, token);
    expect(expectUnauthenticated(response)).toBe(refusal);
    const create = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: openAiKey() } });
    expectUnauthenticated(create);
    expect((await listWith(keyport, victim.token)).text).toBe(before.text);
  });
});

describe("JWT attacks with RS256 configured", () => {
  let keyport: TestKeyport;
  let privateKey: SigningKey;
  let privateKeyPem: string;
  let publicKeyPem: string;
  let sub: string;
  let refusal: string;

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey;
    privateKeyPem = await exportPKCS8(pair.privateKey);
    publicKeyPem = await exportSPKI(pair.publicKey);
    keyport = await startKeyport({
      env: { KEYPORT_JWT_SECRET: "", KEYPORT_JWT_PUBLIC_KEY: publicKeyPem, KEYPORT_JWT_ALGORITHM: "RS256" },
    });
    sub = `u-${randomToken(12)}`;
    refusal = expectUnauthenticated(await listWith(keyport, "garbage"));
  });
  afterAll(async () => {
    await keyport?.close();
  });

  it("treats the empty KEYPORT_JWT_SECRET as unset and verifies with the public key", async () => {
    expect(keyport.config.jwt.verifier).toMatchObject({ kind: "public-key", algorithm: "RS256" });
    const response = await listWith(keyport, await signToken({ alg: "RS256", key: privateKey, sub }));
    expect(response.status, response.text).toBe(200);
  });

  const attacks: Array<[string, () => Promise<string>]> = [
    ["HS256 signed with the public key PEM as the secret", async () => signToken({ key: new TextEncoder().encode(publicKeyPem), sub })],
    ["HS256 signed with a random secret", async () => signToken({ key: new TextEncoder().encode(randomToken(48)), sub })],
    ["alg none", async () => unsignedToken("none", sub)],
    ["RS256 from another key pair", async () => signToken({ alg: "RS256", key: (await generateKeyPair("RS256")).privateKey, sub })],
    // The same RSA key material, imported for another algorithm.
    ["PS256 with the right key", async () => signToken({ alg: "PS256", key: await importPKCS8(privateKeyPem, "PS256"), sub })],
    ["RS512 with the right key", async () => signToken({ alg: "RS512", key: await importPKCS8(privateKeyPem, "RS512"), sub })],
    ["an expired RS256 token", async () => signToken({ alg: "RS256", key: privateKey, sub, expiresIn: -60 })],
    ["an RS256 token without exp", async () => signToken({ alg: "RS256", key: privateKey, sub, expiresIn: null })],
    ["an RS256 token without sub", async () => signToken({ alg: "RS256", key: privateKey, sub: null })],
    ["a tampered RS256 signature", async () => tamperSignature(await signToken({ alg: "RS256", key: privateKey, sub }))],
  ];

  it.each(attacks)("refuses %s", async (_name, build) => {
    expect(expectUnauthenticated(await listWith(keyport, await build()))).toBe(refusal);
  });
});

describe("JWT issuer and audience", () => {
  const issuer = "https://auth.example.test";
  const audience = "keyport-api";
  let keyport: TestKeyport;
  let secret: Uint8Array;

  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_JWT_ISSUER: issuer, KEYPORT_JWT_AUDIENCE: audience } });
    secret = new TextEncoder().encode(keyport.env.KEYPORT_JWT_SECRET);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("accepts the configured issuer and audience (control)", async () => {
    expect((await listWith(keyport, await signToken({ key: secret, issuer, audience }))).status).toBe(200);
  });

  it.each<[string, Partial<TokenSpec>]>([
    ["a wrong issuer", { issuer: "https://evil.example.test", audience }],
    ["a wrong audience", { issuer, audience: "another-service" }],
    ["no issuer", { audience }],
    ["no audience", { issuer }],
    ["neither", {}],
  ])("refuses %s", async (_name, spec) => {
    expectUnauthenticated(await listWith(keyport, await signToken({ key: secret, ...spec })));
  });
});

/** 20 OpenAI keys of one owner, then 20 parallel activations: exactly one may end up active. */
function activationRace(dialect: NonNullable<StartOptions["dialect"]>): void {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport({ dialect });
  });
  afterAll(async () => {
    await keyport?.close();
  });

  const activeIds = async (caller: Caller): Promise<string[]> => {
    const list = await keyport.request("GET", "/api/v1/api-keys?provider=openai", { token: caller.token });
    expect(list.status).toBe(200);
    return (list.body.keys as Array<{ id: string; isActive: boolean }>).filter((key) => key.isActive).map((key) => key.id);
  };

  it("keeps exactly one active key when 20 keys are created and then activated in parallel", async () => {
    const caller = await newCaller(keyport);
    const created = await Promise.all(Array.from({ length: 20 }, () => storeKey(keyport, caller, "openai")));
    expect(new Set(created.map((key) => key.id)).size).toBe(20);
    expect(await activeIds(caller)).toHaveLength(1);

    for (let round = 0; round < 3; round += 1) {
      const responses = await Promise.all(
        created.map(({ id }) => keyport.request("PATCH", `/api/v1/api-keys/${id}`, { token: caller.token, body: { isActive: true } })),
      );
      expect(responses.map((response) => response.status)).toEqual(Array.from({ length: 20 }, () => 200));
      const active = await activeIds(caller);
      expect(active, `round ${round}`).toHaveLength(1);
    }
    // Another provider's active key is untouched by the race.
    const anthropic = await storeKey(keyport, caller, "anthropic");
    expect(anthropic.response.body.isActive).toBe(true);
    const all = await keyport.request("GET", "/api/v1/api-keys", { token: caller.token });
    expect((all.body.keys as Array<{ isActive: boolean }>).filter((key) => key.isActive)).toHaveLength(2);
  });
}

describe("concurrent activation on SQLite", () => {
  activationRace("sqlite");
});

await describePostgres("concurrent activation on PostgreSQL", () => {
  activationRace("postgres");
});

describe("responses carry no secrets", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport();
  });
  afterAll(async () => {
    await keyport.close();
  });

  /** Windows of 8 characters beyond the public prefix that appear in `text`. */
  function leaks(text: string, key: string): string[] {
    const prefix = /^(?:sk-ant-api\d\d-|sk-proj-)/.exec(key)?.[0].length ?? 0;
    const found: string[] = [];
    for (let start = Math.max(0, prefix - 7); start + 8 <= key.length; start += 1) {
      const window = key.slice(start, start + 8);
      if (text.includes(window)) found.push(window);
    }
    return found;
  }

  it("never renders ciphertext, fingerprint, owner or the plaintext on any key route", async () => {
    const caller = await newCaller(keyport);
    const responses: TestResponse[] = [];
    const send = async (method: string, route: string, body?: unknown, headers?: Record<string, string>) => {
      const response = await keyport.request(method, route, {
        token: caller.token,
        ...(body === undefined ? {} : { body }),
        ...(headers === undefined ? {} : { headers }),
      });
      responses.push(response);
      return response;
    };

    const first = openAiKey();
    const second = anthropicKey();
    const replacement = openAiKey();
    const rejected = openAiKey();
    for (const key of [first, second, replacement]) keyport.mock.setKey(key, "valid");
    keyport.mock.setKey(rejected, "invalid");

    const created = await send("POST", "/api/v1/api-keys", { provider: "openai", apiKey: first, label: "First" }, { "idempotency-key": "one" });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await send("POST", "/api/v1/api-keys", { provider: "openai", apiKey: first, label: "First" }, { "idempotency-key": "one" })).status).toBe(201);
    expect((await send("POST", "/api/v1/api-keys", { provider: "anthropic", apiKey: second })).status).toBe(201);
    expect((await send("POST", "/api/v1/api-keys", { provider: "openai", apiKey: first })).status).toBe(409);
    expect((await send("POST", "/api/v1/api-keys", { provider: "openai", apiKey: rejected })).status).toBe(422);
    expect((await send("POST", "/api/v1/api-keys", { provider: "anthropic", apiKey: first })).status).toBe(400);
    expect((await send("GET", "/api/v1/api-keys")).status).toBe(200);
    expect((await send("GET", `/api/v1/api-keys/${id}`)).status).toBe(200);
    expect((await send("PATCH", `/api/v1/api-keys/${id}`, { label: "Renamed", monthlyLimitUsd: 12.5 })).status).toBe(200);
    expect((await send("PUT", `/api/v1/api-keys/${id}/secret`, { apiKey: replacement })).status).toBe(200);
    expect((await send("POST", `/api/v1/api-keys/${id}/test`)).status).toBe(200);
    expect((await send("GET", "/api/v1/audit")).status).toBe(200);
    expect((await send("DELETE", `/api/v1/api-keys/${id}`)).status).toBe(204);
    expect((await send("GET", `/api/v1/api-keys/${id}`)).status).toBe(404);
    expect((await send("GET", "/api/v1/audit")).status).toBe(200);

    for (const response of responses) {
      expect(response.text).not.toMatch(/ciphertext|fingerprint|owner/i);
      expect(response.text).not.toContain(caller.owner);
      for (const key of [first, second, replacement, rejected]) expect(leaks(response.text, key)).toEqual([]);
    }
    const logs = keyport.logs.join("\n");
    for (const key of [first, second, replacement, rejected]) expect(leaks(logs, key)).toEqual([]);
  });
});
