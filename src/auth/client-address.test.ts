import fastify from "fastify";
import { describe, expect, it } from "vitest";
import type { TrustProxy } from "../config/config-schema.js";
import { clientAddressOf, createProxyTrust } from "./client-address.js";

type Case = [name: string, trust: TrustProxy, remoteAddress: string, forwardedFor: string | undefined, expected: string];

const CASES: Case[] = [
  ["no trust: the connection, whatever the header says", false, "203.0.113.9", "198.51.100.1", "203.0.113.9"],
  ["no trust, no header", false, "203.0.113.9", undefined, "203.0.113.9"],
  ["an IPv4 client on a dual-stack socket", false, "::ffff:203.0.113.9", undefined, "203.0.113.9"],
  ["trust everything: the farthest hop", true, "10.0.0.2", "198.51.100.1, 10.0.0.1", "198.51.100.1"],
  ["a trusted proxy: the address before it", ["10.0.0.0/8"], "10.0.0.2", "198.51.100.1", "198.51.100.1"],
  ["a spoofed hop before the trusted ones is not reached", ["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.1", "198.51.100.1"],
  ["a client not behind the trusted proxy names itself in vain", ["10.0.0.0/8"], "203.0.113.9", "1.2.3.4", "203.0.113.9"],
  ["a trusted single address", ["127.0.0.1"], "127.0.0.1", "198.51.100.7", "198.51.100.7"],
  ["a trusted IPv4 proxy seen through a dual-stack socket", ["127.0.0.1"], "::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"],
  ["an IPv6 range", ["fd00::/8"], "fd00::1", "2001:db8::5", "2001:db8::5"],
  ["every hop trusted: the farthest", ["10.0.0.0/8"], "10.0.0.2", "10.0.0.3", "10.0.0.3"],
];

describe("clientAddressOf", () => {
  it.each(CASES)("%s", (_name, setting, remoteAddress, forwardedFor, expected) => {
    const headers = forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor };
    expect(clientAddressOf({ remoteAddress, headers }, createProxyTrust(setting))).toBe(expected);
  });

  it("reads repeated X-Forwarded-For lines as one list", () => {
    const trust = createProxyTrust(["10.0.0.0/8"]);
    expect(clientAddressOf({ remoteAddress: "10.0.0.2", headers: { "x-forwarded-for": ["1.2.3.4", "198.51.100.1, 10.0.0.1"] } }, trust)).toBe(
      "198.51.100.1",
    );
  });

  it.each(CASES)("agrees with the management API's request.ip: %s", async (_name, setting, remoteAddress, forwardedFor, expected) => {
    const trust = createProxyTrust(setting);
    const app = fastify({ trustProxy: trust });
    app.get("/", async (request) => ({ ip: request.ip }));
    const response = await app.inject({ method: "GET", url: "/", remoteAddress, headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor } });
    await app.close();
    const ip = (response.json() as { ip: string }).ip.replace(/^::ffff:(?=\d)/, "");
    expect(ip).toBe(expected);
  });
});
