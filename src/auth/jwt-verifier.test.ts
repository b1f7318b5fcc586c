import { createHmac, generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  decodeJwt,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import { afterEach, describe, expect, it } from "vitest";
import type { Config, JwtVerifierConfig } from "../config/config-schema.js";
import { DEFAULT_TIERS } from "../config/tiers.js";
import { AppError } from "../lib/errors.js";
import { redacted } from "../lib/redacted.js";
import { signDevToken } from "./dev-token.js";
import { createJwtVerifier, type JwtVerifierOptions } from "./jwt-verifier.js";

const SECRET = "test-secret-that-is-long-enough-0123456789";
const T0_MS = 1_800_000_000_000;
const T0 = T0_MS / 1000;

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Hand-built HS token, so any header or claim (even an invalid one) can be signed. */
function signHs(payload: Record<string, unknown>, options: { header?: Record<string, unknown>; secret?: string | Buffer } = {}) {
  return signHsJson(JSON.stringify(payload), options);
}

/** The same from the payload's JSON text, for values `JSON.stringify` cannot write (`1e309`). */
function signHsJson(payloadJson: string, options: { header?: Record<string, unknown>; secret?: string | Buffer } = {}) {
  const header = base64url({ alg: "HS256", typ: "JWT", ...options.header });
  const body = Buffer.from(payloadJson).toString("base64url");
  const signature = createHmac("sha256", options.secret ?? SECRET).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${signature}`;
}

async function signAsymmetric(payload: JWTPayload, key: CryptoKey, header: JWTHeaderParameters): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

function createTestClock(startMs = T0_MS) {
  let nowMs = startMs;
  return {
    clock: { now: () => new Date(nowMs) },
    set(ms: number) {
      nowMs = ms;
    },
  };
}

function jwtConfig(verifier: JwtVerifierConfig, overrides: Partial<Config["jwt"]> = {}): Config["jwt"] {
  return { verifier, issuer: undefined, audience: undefined, clockToleranceSeconds: 5, maxTtlSeconds: 86_400, ...overrides };
}

const secretVerifier: JwtVerifierConfig = { kind: "secret", algorithm: "HS256", secret: redacted(SECRET) };

function createVerifier(overrides: Partial<JwtVerifierOptions> & { jwt?: Config["jwt"] } = {}) {
  const testClock = createTestClock();
  const verifier = createJwtVerifier({
    jwt: jwtConfig(secretVerifier),
    tiers: DEFAULT_TIERS,
    defaultTier: "community",
    clock: testClock.clock,
    ...overrides,
  });
  return { verifier, testClock };
}

/** RSA key generation is slow; each role's key pair is made once per file. */
const keyPairs = {
  issuer: generateKeyPair("RS256", { extractable: true }),
  attacker: generateKeyPair("RS256", { extractable: true }),
  ec: generateKeyPair("ES256", { extractable: true }),
};

const valid = { sub: "alice", exp: T0 + 600 };

describe("createJwtVerifier with an HS256 secret", () => {
  it("accepts a valid token and fills in the default owner and tier", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs(valid))).toEqual({
      ok: true,
      principal: { kind: "user", sub: "alice", owner: "user:alice", tier: "community" },
      expiresAt: (T0 + 600) * 1000,
    });
  });

  it("honours owner and tier claims", async () => {
    const { verifier } = createVerifier();
    const outcome = await verifier.verify(signHs({ ...valid, owner: "project:acme-1", tier: "premium" }));
    expect(outcome).toMatchObject({ ok: true, principal: { sub: "alice", owner: "project:acme-1", tier: "premium" } });
  });

  it("refuses an alg:none token", async () => {
    const { verifier } = createVerifier();
    const token = `${base64url({ alg: "none", typ: "JWT" })}.${base64url(valid)}.`;
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
  });

  it("refuses an HS512 token when HS256 is configured, even with the right secret", async () => {
    const { verifier } = createVerifier();
    const header = base64url({ alg: "HS512", typ: "JWT" });
    const body = base64url(valid);
    const signature = createHmac("sha512", SECRET).update(`${header}.${body}`).digest("base64url");
    expect(await verifier.verify(`${header}.${body}.${signature}`)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
  });

  it("refuses an RS256 token when HS256 is configured", async () => {
    const { verifier } = createVerifier();
    const { privateKey } = await keyPairs.issuer;
    const token = await signAsymmetric(valid, privateKey, { alg: "RS256" });
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
  });

  it("refuses a token signed with another secret, or with a changed payload", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs(valid, { secret: `${SECRET}x` }))).toEqual({ ok: false, reason: "bad_signature" });
    const [header, , signature] = signHs(valid).split(".");
    const forged = `${header}.${base64url({ ...valid, owner: "user:bob" })}.${signature}`;
    expect(await verifier.verify(forged)).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("refuses an expired token, and accepts one expired within the clock tolerance", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ sub: "alice", exp: T0 - 6 }))).toEqual({ ok: false, reason: "expired" });
    expect(await verifier.verify(signHs({ sub: "alice", exp: T0 - 4 }))).toMatchObject({ ok: true });
  });

  it("refuses a token that is not valid yet", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ ...valid, nbf: T0 + 60 }))).toEqual({ ok: false, reason: "not_yet_valid" });
    expect(await verifier.verify(signHs({ ...valid, nbf: T0 + 4 }))).toMatchObject({ ok: true });
  });

  it("requires exp and sub", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ sub: "alice" }))).toEqual({ ok: false, reason: "missing_claim" });
    expect(await verifier.verify(signHs({ exp: T0 + 600 }))).toEqual({ ok: false, reason: "missing_claim" });
  });

  it("refuses an exp that is not a number", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ sub: "alice", exp: String(T0 + 600) }))).toEqual({ ok: false, reason: "bad_claim" });
  });

  it.each([
    ["1e20", "1e20"],
    ["1e309 (Infinity once parsed)", "1e309"],
    ["a fraction", String(T0 + 600.5)],
    ["beyond the safe integers", "9007199254740993"],
  ])("refuses an exp of %s", async (_label, exp) => {
    const { verifier } = createVerifier();
    const token = signHsJson(`{"sub":"alice","exp":${exp}}`);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "bad_claim" });
    expect(verifier.verifyCached(token)).toBeUndefined();
    const withIat = signHsJson(`{"sub":"alice","iat":${T0},"exp":${exp}}`);
    expect(await verifier.verify(withIat)).toEqual({ ok: false, reason: "bad_claim" });
  });

  it("refuses an iat that is not a finite number", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHsJson(`{"sub":"alice","iat":1e309,"exp":${T0 + 600}}`))).toEqual({ ok: false, reason: "bad_claim" });
  });

  it("limits the lifetime to KEYPORT_JWT_MAX_TTL_SECONDS, measured from iat", async () => {
    const { verifier } = createVerifier({ jwt: jwtConfig(secretVerifier, { maxTtlSeconds: 600 }) });
    expect(await verifier.verify(signHs({ sub: "alice", iat: T0 - 100, exp: T0 + 500 }))).toMatchObject({ ok: true });
    // Still inside its first 600 s, but issued for 650: longer than allowed.
    expect(await verifier.verify(signHs({ sub: "alice", iat: T0 - 100, exp: T0 + 550 }))).toEqual({ ok: false, reason: "lifetime_too_long" });
    // An iat in the future does not stretch the limit: it is also measured from now.
    expect(await verifier.verify(signHs({ sub: "alice", iat: T0 + 3600, exp: T0 + 3900 }))).toEqual({ ok: false, reason: "lifetime_too_long" });
  });

  it("limits the lifetime from now when the token has no iat, with the clock tolerance", async () => {
    const { verifier } = createVerifier({ jwt: jwtConfig(secretVerifier, { maxTtlSeconds: 600 }) });
    expect(await verifier.verify(signHs({ sub: "alice", exp: T0 + 605 }))).toMatchObject({ ok: true });
    expect(await verifier.verify(signHs({ sub: "alice", exp: T0 + 606 }))).toEqual({ ok: false, reason: "lifetime_too_long" });
  });

  it("accepts a token of exactly the default lifetime (24 h) and refuses one second more", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ sub: "alice", iat: T0, exp: T0 + 86_400 }))).toMatchObject({ ok: true });
    expect(await verifier.verify(signHs({ sub: "alice", iat: T0, exp: T0 + 86_401 }))).toEqual({ ok: false, reason: "lifetime_too_long" });
  });

  it("checks the issuer and audience when configured", async () => {
    const { verifier } = createVerifier({
      jwt: jwtConfig(secretVerifier, { issuer: "https://platform.example", audience: "keyport" }),
    });
    const claims = { ...valid, iss: "https://platform.example", aud: "keyport" };
    expect(await verifier.verify(signHs(claims))).toMatchObject({ ok: true });
    expect(await verifier.verify(signHs({ ...claims, aud: ["other", "keyport"] }))).toMatchObject({ ok: true });
    expect(await verifier.verify(signHs({ ...claims, iss: "https://evil.example" }))).toEqual({
      ok: false,
      reason: "wrong_issuer",
    });
    expect(await verifier.verify(signHs({ ...claims, aud: "other" }))).toEqual({ ok: false, reason: "wrong_audience" });
    expect(await verifier.verify(signHs({ ...valid, aud: "keyport" }))).toEqual({ ok: false, reason: "missing_claim" });
  });

  it("ignores iss and aud when none are configured", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(signHs({ ...valid, iss: "anyone", aud: "anything" }))).toMatchObject({ ok: true });
  });

  it.each([["admin"], ["user:"], ["user:a b"], ["tenant:acme"], ["user:alice\n"], [`user:${"a".repeat(129)}`], [42], [null], [["user:alice"]]])(
    "refuses the owner claim %j",
    async (owner) => {
      const { verifier } = createVerifier();
      expect(await verifier.verify(signHs({ ...valid, owner }))).toEqual({ ok: false, reason: "bad_claim" });
    },
  );

  it.each([["gold"], ["__proto__"], ["constructor"], ["toString"], ["Premium"], [1], [null]])(
    "refuses the tier claim %j",
    async (tier) => {
      const { verifier } = createVerifier();
      expect(await verifier.verify(signHs({ ...valid, tier }))).toEqual({ ok: false, reason: "bad_claim" });
    },
  );

  it("refuses a tier claim of __proto__ even as a JSON own property", async () => {
    const { verifier } = createVerifier();
    const header = base64url({ alg: "HS256", typ: "JWT" });
    const body = Buffer.from(`{"sub":"alice","exp":${T0 + 600},"tier":"__proto__","__proto__":{"tier":"premium"}}`).toString(
      "base64url",
    );
    const signature = createHmac("sha256", SECRET).update(`${header}.${body}`).digest("base64url");
    expect(await verifier.verify(`${header}.${body}.${signature}`)).toEqual({ ok: false, reason: "bad_claim" });
  });

  it.each([["alice smith"], [""], ["alice\u0000"], ["álice"], ["a".repeat(129)], [7], [null]])(
    "refuses the sub claim %j",
    async (sub) => {
      const { verifier } = createVerifier();
      expect(await verifier.verify(signHs({ ...valid, sub }))).toEqual({ ok: false, reason: "bad_claim" });
    },
  );

  it.each([
    ["", "malformed"],
    ["garbage", "malformed"],
    ["a.b.c", "malformed"],
    ["...", "malformed"],
    ["Bearer x.y.z", "malformed"],
    ["a.b.c.d.e", "malformed"],
    [`${base64url({ alg: "HS256" })}.${base64url(valid)}`, "malformed"],
    [`${base64url({ alg: "HS256" })}.${base64url(valid)}.sig.extra`, "malformed"],
    [`${Buffer.from("{bad").toString("base64url")}.${base64url(valid)}.c2ln`, "malformed"],
    [`${base64url({ alg: "HS256" })}.${base64url(valid)}.!!!`, "malformed"],
    [`${base64url({ alg: "HS256" })}.é.c2ln`, "malformed"],
    [`eyJhbGciOiJIUzI1NiJ9.${"A".repeat(9000)}.c2ln`, "malformed"],
    // The signature is checked before the payload is parsed, so an unsigned bad payload is a bad signature.
    [`${base64url({ alg: "HS256" })}.${Buffer.from("not json").toString("base64url")}.c2ln`, "bad_signature"],
  ])("refuses the garbage token %#", async (token, reason) => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(token)).toEqual({ ok: false, reason });
  });

  it.each([["not json"], ["[1,2]"], ['"alice"'], ["null"]])("refuses the signed non-object payload %s", async (payload) => {
    const { verifier } = createVerifier();
    const header = base64url({ alg: "HS256", typ: "JWT" });
    const body = Buffer.from(payload).toString("base64url");
    const signature = createHmac("sha256", SECRET).update(`${header}.${body}`).digest("base64url");
    expect(await verifier.verify(`${header}.${body}.${signature}`)).toEqual({ ok: false, reason: "malformed" });
  });

  it("refuses a non-string token as malformed instead of throwing", async () => {
    const { verifier } = createVerifier();
    expect(await verifier.verify(undefined as unknown as string)).toEqual({ ok: false, reason: "malformed" });
  });

  it("refuses a token with an unknown critical header", async () => {
    const { verifier } = createVerifier();
    const outcome = await verifier.verify(signHs(valid, { header: { crit: ["exp-ext"], "exp-ext": true } }));
    expect(outcome.ok).toBe(false);
  });

  it("refuses to start with a secret shorter than the algorithm needs", () => {
    expect(() =>
      createJwtVerifier({
        jwt: jwtConfig({ kind: "secret", algorithm: "HS256", secret: redacted("s".repeat(31)) }),
        tiers: DEFAULT_TIERS,
        defaultTier: "community",
      }),
    ).toThrow(/at least 32 bytes/);
  });

  it("refuses to start with a default tier that is not configured", () => {
    expect(() =>
      createJwtVerifier({ jwt: jwtConfig(secretVerifier), tiers: DEFAULT_TIERS, defaultTier: "constructor" }),
    ).toThrow(/not a configured tier/);
  });
});

describe("createJwtVerifier with a PEM public key", () => {
  it("accepts an RS256 token and refuses the HS256 key-confusion attack", async () => {
    const { publicKey, privateKey } = await keyPairs.issuer;
    const pem = await exportSPKI(publicKey);
    const { verifier } = createVerifier({
      jwt: jwtConfig({ kind: "public-key", algorithm: "RS256", publicKeyPem: pem }),
    });
    await verifier.ready();
    expect(await verifier.verify(await signAsymmetric(valid, privateKey, { alg: "RS256" }))).toMatchObject({ ok: true });

    // The classic attack: an HS256 token whose HMAC key is the (public) PEM text.
    const confused = signHs(valid, { secret: pem });
    expect(await verifier.verify(confused)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
    const confusedTrimmed = signHs(valid, { secret: pem.trim() });
    expect(await verifier.verify(confusedTrimmed)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
  });

  it("ignores an embedded jwk header signed by the attacker's key", async () => {
    const legitimate = await keyPairs.issuer;
    const attacker = await keyPairs.attacker;
    const { verifier } = createVerifier({
      jwt: jwtConfig({ kind: "public-key", algorithm: "RS256", publicKeyPem: await exportSPKI(legitimate.publicKey) }),
    });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const token = await signAsymmetric(valid, attacker.privateKey, { alg: "RS256", jwk: attackerJwk });
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("refuses an ES256 token when RS256 is configured", async () => {
    const rsa = await keyPairs.issuer;
    const ec = await keyPairs.ec;
    const { verifier } = createVerifier({
      jwt: jwtConfig({ kind: "public-key", algorithm: "RS256", publicKeyPem: await exportSPKI(rsa.publicKey) }),
    });
    expect(await verifier.verify(await signAsymmetric(valid, ec.privateKey, { alg: "ES256" }))).toEqual({
      ok: false,
      reason: "algorithm_not_allowed",
    });
  });

  it("reports an unusable PEM through ready()", async () => {
    const rsa = await keyPairs.issuer;
    const rsaPem = await exportSPKI(rsa.publicKey);
    const weakPem = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" });
    const cases: [JwtVerifierConfig, RegExp][] = [
      [{ kind: "public-key", algorithm: "ES256", publicKeyPem: rsaPem }, /cannot be used as a ES256 public key/],
      [{ kind: "public-key", algorithm: "RS256", publicKeyPem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }, /cannot be used/],
      [{ kind: "public-key", algorithm: "RS256", publicKeyPem: String(weakPem) }, /cannot be used/],
    ];
    for (const [config, message] of cases) {
      const { verifier } = createVerifier({ jwt: jwtConfig(config) });
      await expect(verifier.ready()).rejects.toThrow(message);
    }
  });
});

type JwksServer = { url: string; requests: () => number; close: () => Promise<void> };

async function startServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<JwksServer> {
  let requests = 0;
  const server = createServer((request, response) => {
    requests += 1;
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("createJwtVerifier with a JWKS URL", () => {
  const servers: JwksServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  async function jwksFixture() {
    const rsa = await keyPairs.issuer;
    const ec = await keyPairs.ec;
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ];
    const body = JSON.stringify({ keys });
    const server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(body);
    });
    servers.push(server);
    return { rsa, ec, server, body };
  }

  function jwksVerifier(url: string, algorithm: "RS256" | "ES256") {
    return createVerifier({ jwt: jwtConfig({ kind: "jwks", algorithm, jwksUrl: url }) }).verifier;
  }

  it("verifies RS256 and ES256 tokens by kid", async () => {
    const { rsa, ec, server } = await jwksFixture();
    const rsToken = await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-1" });
    const esToken = await signAsymmetric(valid, ec.privateKey, { alg: "ES256", kid: "ec-1" });
    expect(await jwksVerifier(server.url, "RS256").verify(rsToken)).toMatchObject({ ok: true, principal: { sub: "alice" } });
    expect(await jwksVerifier(server.url, "ES256").verify(esToken)).toMatchObject({ ok: true, principal: { sub: "alice" } });
    expect(await jwksVerifier(server.url, "RS256").verify(esToken)).toEqual({ ok: false, reason: "algorithm_not_allowed" });
  });

  it("refuses an unknown kid, and a known kid on a token signed by another key", async () => {
    const { rsa, server } = await jwksFixture();
    const verifier = jwksVerifier(server.url, "RS256");
    expect(await verifier.verify(await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-9" }))).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    const attacker = await keyPairs.attacker;
    expect(await verifier.verify(await signAsymmetric(valid, attacker.privateKey, { alg: "RS256", kid: "rsa-1" }))).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("ignores embedded jwk and jku headers and fetches nothing from the token", async () => {
    const { server } = await jwksFixture();
    const attackerServer = await startServer((_request, response) => response.end("{}"));
    servers.push(attackerServer);
    const attacker = await keyPairs.attacker;
    const token = await signAsymmetric(valid, attacker.privateKey, {
      alg: "RS256",
      kid: "rsa-1",
      jwk: await exportJWK(attacker.publicKey),
      jku: attackerServer.url,
      x5u: attackerServer.url,
    });
    expect(await jwksVerifier(server.url, "RS256").verify(token)).toEqual({ ok: false, reason: "bad_signature" });
    expect(attackerServer.requests()).toBe(0);
  });

  it("reports unavailable when the JWKS server is down", async () => {
    const { rsa } = await jwksFixture();
    const down = await startServer(() => undefined);
    await down.close();
    const token = await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-1" });
    expect(await jwksVerifier(down.url, "RS256").verify(token)).toEqual({ ok: false, reason: "unavailable" });
  });

  it.each([
    ["a 500", (response: ServerResponse) => response.writeHead(500).end("oops")],
    ["invalid JSON", (response: ServerResponse) => response.writeHead(200).end("{not json")],
    ["not a key set", (response: ServerResponse) => response.writeHead(200).end('{"keys":"none"}')],
    ["a redirect", (response: ServerResponse) => response.writeHead(302, { location: "http://127.0.0.1:1/" }).end()],
  ])("reports unavailable when the JWKS server answers with %s", async (_name, answer) => {
    const { rsa } = await jwksFixture();
    const broken = await startServer((_request, response) => answer(response));
    servers.push(broken);
    const token = await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-1" });
    expect(await jwksVerifier(broken.url, "RS256").verify(token)).toEqual({ ok: false, reason: "unavailable" });
  });

  it("does not cache an outage: the same token verifies once the JWKS is back", async () => {
    const { rsa, body } = await jwksFixture();
    let isUp = false;
    const flaky = await startServer((_request, response) => {
      if (isUp) response.writeHead(200, { "content-type": "application/json" }).end(body);
      else response.writeHead(503).end();
    });
    servers.push(flaky);
    const verifier = jwksVerifier(flaky.url, "RS256");
    const token = await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-1" });
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "unavailable" });
    isUp = true;
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
  });

  it("uses the injected fetch for the key set", async () => {
    const { rsa } = await jwksFixture();
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256" };
    const fetched: string[] = [];
    const verifier = createJwtVerifier({
      jwt: jwtConfig({ kind: "jwks", algorithm: "RS256", jwksUrl: "https://idp.invalid/jwks.json" }),
      tiers: DEFAULT_TIERS,
      defaultTier: "community",
      clock: createTestClock().clock,
      fetchJwks: async (url) => {
        fetched.push(url);
        return new Response(JSON.stringify({ keys: [jwk] }), { status: 200 });
      },
    });
    const token = await signAsymmetric(valid, rsa.privateKey, { alg: "RS256", kid: "rsa-1" });
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
    expect(fetched).toEqual(["https://idp.invalid/jwks.json"]);
  });
});

describe("createJwtVerifier cache", () => {
  it("does not honour a cached token past its exp", async () => {
    const { verifier, testClock } = createVerifier();
    const token = signHs({ sub: "alice", exp: T0 + 2 });
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
    testClock.set(T0_MS + 1_000);
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
    // Past exp + clock tolerance (5 s): full verification runs again and refuses it.
    testClock.set(T0_MS + 8_000);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "expired" });
  });

  // Moving the clock back before a token's nbf makes a cache hit observable: full verification
  // would refuse the token as not yet valid, a cache hit still returns the earlier success.
  const notBefore = (sub: string) => signHs({ sub, nbf: T0, exp: T0 + 600 });
  const beforeNbfMs = T0_MS - 60_000;

  it("answers a repeated token from the cache", async () => {
    const { verifier, testClock } = createVerifier();
    const token = notBefore("alice");
    const first = await verifier.verify(token);
    testClock.set(beforeNbfMs);
    expect(await verifier.verify(token)).toEqual(first);
  });

  it("can be turned off", async () => {
    const { verifier, testClock } = createVerifier({ cacheMaxEntries: 0 });
    const token = notBefore("alice");
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
    testClock.set(beforeNbfMs);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "not_yet_valid" });
  });

  it("evicts the least recently used entry when full", async () => {
    const { verifier, testClock } = createVerifier({ cacheMaxEntries: 2 });
    const [a, b, c] = [notBefore("a"), notBefore("b"), notBefore("c")];
    for (const token of [a, b, a, c]) expect(await verifier.verify(token)).toMatchObject({ ok: true });
    testClock.set(beforeNbfMs);
    expect(await verifier.verify(a)).toMatchObject({ ok: true });
    expect(await verifier.verify(c)).toMatchObject({ ok: true });
    expect(await verifier.verify(b)).toEqual({ ok: false, reason: "not_yet_valid" });
  });

  it("sweeps out expired tokens within a minute, so they neither stay in memory nor push live ones out", async () => {
    const { verifier, testClock } = createVerifier({ cacheMaxEntries: 2 });
    const longLived = notBefore("long");
    expect(await verifier.verify(longLived)).toMatchObject({ ok: true });
    expect(await verifier.verify(signHs({ sub: "short", exp: T0 + 2 }))).toMatchObject({ ok: true });
    // A minute after the short token expired, the next lookup sweeps it out: a new token then
    // fits beside the long-lived one instead of evicting it (the least recently used).
    testClock.set(T0_MS + 70_000);
    expect(await verifier.verify(notBefore("next"))).toMatchObject({ ok: true });
    testClock.set(beforeNbfMs);
    expect(await verifier.verify(longLived)).toMatchObject({ ok: true });
  });

  it("never answers from the cache past the maximum lifetime counted from the verification", async () => {
    const { verifier, testClock } = createVerifier({ jwt: jwtConfig(secretVerifier, { maxTtlSeconds: 600 }) });
    // Accepted thanks to the clock tolerance: its exp is 4 s past the limit.
    const token = signHs({ sub: "alice", exp: T0 + 604 });
    expect(await verifier.verify(token)).toMatchObject({ ok: true });
    testClock.set(T0_MS + 599_000);
    expect(verifier.verifyCached(token)).toMatchObject({ ok: true });
    testClock.set(T0_MS + 600_000);
    expect(verifier.verifyCached(token)).toBeUndefined();
  });

  it("answers verifyCached only for a token verified before, still cached and not expired", async () => {
    const { verifier, testClock } = createVerifier({ cacheMaxEntries: 2 });
    const token = signHs({ sub: "alice", exp: T0 + 2 });
    expect(verifier.verifyCached(token)).toBeUndefined();
    expect(verifier.verifyCached("")).toBeUndefined();
    const first = await verifier.verify(token);
    expect(verifier.verifyCached(token)).toBe(first);
    // Failures are never cached: a bad token always goes through verify.
    const forged = `${token.slice(0, -2)}xx`;
    expect(await verifier.verify(forged)).toMatchObject({ ok: false });
    expect(verifier.verifyCached(forged)).toBeUndefined();
    // Past exp the cached success is not honoured.
    testClock.set(T0_MS + 2_000);
    expect(verifier.verifyCached(token)).toBeUndefined();
  });

  it("hands out principals that cannot be changed", async () => {
    const { verifier } = createVerifier();
    const token = signHs(valid);
    const first = await verifier.verify(token);
    if (!first.ok) throw new Error("expected success");
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.principal)).toBe(true);
    expect(await verifier.verify(token)).toEqual(first);
  });
});

describe("signDevToken", () => {
  it("signs a token the verifier accepts, with all claims", async () => {
    const token = await signDevToken({
      secret: redacted(SECRET),
      algorithm: "HS256",
      sub: "alice",
      owner: "project:acme",
      tier: "premium",
      expiresInSeconds: 120,
      issuer: "https://platform.example",
      audience: "keyport",
    });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: "alice", owner: "project:acme", tier: "premium", iss: "https://platform.example", aud: "keyport" });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
    const verifier = createJwtVerifier({
      jwt: jwtConfig(secretVerifier, { issuer: "https://platform.example", audience: "keyport" }),
      tiers: DEFAULT_TIERS,
      defaultTier: "community",
    });
    expect(await verifier.verify(token)).toMatchObject({
      ok: true,
      principal: { kind: "user", sub: "alice", owner: "project:acme", tier: "premium" },
    });
  });

  it("defaults to one hour and signs HS512 with a long enough secret", async () => {
    const secret = redacted("x".repeat(64));
    const token = await signDevToken({ secret, algorithm: "HS512", sub: "alice" });
    const claims = decodeJwt(token);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
    const verifier = createJwtVerifier({
      jwt: jwtConfig({ kind: "secret", algorithm: "HS512", secret }),
      tiers: DEFAULT_TIERS,
      defaultTier: "community",
    });
    expect(await verifier.verify(token)).toMatchObject({ ok: true, principal: { owner: "user:alice" } });
  });

  it.each([
    ["a short secret", { secret: redacted("s".repeat(31)) }, /at least 32 bytes/],
    ["a short HS512 secret", { algorithm: "HS512" as const, secret: redacted("s".repeat(63)) }, /at least 64 bytes/],
    ["a bad sub", { sub: "alice smith" }, /sub must match/],
    ["a bad owner", { owner: "admin" }, /owner must be/],
    ["a bad tier", { tier: "__proto__" }, /tier must match/],
    ["a zero lifetime", { expiresInSeconds: 0 }, /expiresInSeconds/],
    ["a fractional lifetime", { expiresInSeconds: 1.5 }, /expiresInSeconds/],
  ])("refuses %s", async (_name, overrides, message) => {
    const attempt = signDevToken({ secret: redacted(SECRET), algorithm: "HS256", sub: "alice", ...overrides });
    await expect(attempt).rejects.toBeInstanceOf(AppError);
    await expect(attempt).rejects.toThrow(message);
  });
});
