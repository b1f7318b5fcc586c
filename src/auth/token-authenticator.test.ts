import { describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../config/tiers.js";
import { AppError } from "../lib/errors.js";
import { redacted } from "../lib/redacted.js";
import { createAuthFailureThrottle } from "../limits/auth-failure-throttle.js";
import { createMemoryRateLimiter } from "../limits/memory-rate-limiter.js";
import { createProxyTrust } from "./client-address.js";
import { signDevToken } from "./dev-token.js";
import { createJwtVerifier, type JwtVerifier } from "./jwt-verifier.js";
import { createTokenAuthenticator } from "./token-authenticator.js";

const SECRET = redacted("authenticator-test-secret-0123456789abcdef");

/** An authenticator over a real HS256 verifier that counts signature checks (full verifications). */
function setup(failuresPerMinute: number) {
  const verifier = createJwtVerifier({
    jwt: { verifier: { kind: "secret", algorithm: "HS256", secret: SECRET }, issuer: undefined, audience: undefined, clockToleranceSeconds: 5, maxTtlSeconds: 86_400 },
    tiers: DEFAULT_TIERS,
    defaultTier: "community",
  });
  const counted = { verifications: 0 };
  const countingVerifier: JwtVerifier = {
    ...verifier,
    verify(token) {
      counted.verifications += 1;
      return verifier.verify(token);
    },
  };
  const throttle = createAuthFailureThrottle({
    failures: createMemoryRateLimiter({ points: failuresPerMinute, durationSeconds: 60, keyPrefix: "authenticator-test" }),
  });
  const authenticator = createTokenAuthenticator({ verifier: countingVerifier, throttle, trust: createProxyTrust(false) });
  return { authenticator, counted };
}

const NO_HEADERS = {};
const goodToken = (sub: string) => signDevToken({ secret: SECRET, algorithm: "HS256", sub });
const badToken = (index: number) => `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.${"A".repeat(40)}${index}`;

async function errorOf(run: () => unknown): Promise<AppError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error("expected an AppError");
}

describe("token authenticator", () => {
  it("answers 429 with retry-after after N failures from one address, without checking the token", async () => {
    const { authenticator, counted } = setup(5);
    const codes: string[] = [];
    for (let index = 0; index < 30; index += 1) codes.push((await errorOf(() => authenticator.authenticate(badToken(index), "198.51.100.1", NO_HEADERS))).code);
    expect(codes).toEqual([...Array<string>(5).fill("unauthenticated"), ...Array<string>(25).fill("rate_limited")]);
    expect(counted.verifications).toBe(5);

    const refused = await errorOf(() => authenticator.authenticate(badToken(99), "198.51.100.1", NO_HEADERS));
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it("lets a good token from another address through", async () => {
    const { authenticator } = setup(2);
    for (let index = 0; index < 5; index += 1) await errorOf(() => authenticator.authenticate(badToken(index), "198.51.100.2", NO_HEADERS));
    const principal = await authenticator.authenticate(await goodToken("elsewhere"), "198.51.100.3", NO_HEADERS);
    expect(principal.sub).toBe("elsewhere");
  });

  it("never slows a token that verified before, even from a blocked address", async () => {
    const { authenticator, counted } = setup(2);
    const token = await goodToken("regular");
    expect((await authenticator.authenticate(token, "198.51.100.4", NO_HEADERS)).sub).toBe("regular");
    for (let index = 0; index < 3; index += 1) await errorOf(() => authenticator.authenticate(badToken(index), "198.51.100.4", NO_HEADERS));
    const before = counted.verifications;
    // A cache hit: no promise, no verification, no throttle.
    const again = authenticator.authenticate(token, "198.51.100.4", NO_HEADERS);
    expect(again).not.toBeInstanceOf(Promise);
    expect(counted.verifications).toBe(before);
  });

  it("does not count successes: many good tokens never block an address", async () => {
    const { authenticator } = setup(2);
    for (let index = 0; index < 5; index += 1) {
      expect((await authenticator.authenticate(await goodToken(`user-${index}`), "198.51.100.5", NO_HEADERS)).sub).toBe(`user-${index}`);
    }
    expect((await errorOf(() => authenticator.authenticate(badToken(1), "198.51.100.5", NO_HEADERS))).code).toBe("unauthenticated");
  });
});
