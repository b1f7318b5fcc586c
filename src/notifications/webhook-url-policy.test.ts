import { describe, expect, it } from "vitest";
import { isAppError } from "../lib/errors.js";
import { classifyAddress } from "./address-ranges.js";
import { assertWebhookUrl, checkWebhookUrl, type ResolveHost, type WebhookUrlPolicy } from "./webhook-url-policy.js";

const resolveTo =
  (...addresses: string[]): ResolveHost =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

const production: WebhookUrlPolicy = { requireHttps: true, allowPrivateAddresses: false, resolve: resolveTo("93.184.215.14") };
const development: WebhookUrlPolicy = { ...production, requireHttps: false };

describe("classifyAddress", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["64:ff9b::7f00:1", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["10.0.0.1", "private"],
    ["172.16.5.4", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["::ffff:10.0.0.1", "private"],
    ["fd12:3456::1", "private"],
    ["169.254.169.254", "metadata"],
    ["::ffff:169.254.169.254", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["100.100.100.200", "metadata"],
    ["168.63.129.16", "metadata"],
    ["169.254.1.1", "link_local"],
    ["fe80::1", "link_local"],
    ["100.64.0.1", "shared"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["192.0.2.10", "reserved"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["2002:7f00:1::", "reserved"],
    ["2001:db8::1", "reserved"],
    ["not an address", "reserved"],
  ])("%s is %s", (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each(["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])(
    "%s is public",
    (address) => {
      expect(classifyAddress(address)).toBeUndefined();
    },
  );
});

describe("checkWebhookUrl", () => {
  it("accepts a public https URL and returns it parsed", async () => {
    const check = await checkWebhookUrl("https://hooks.example.com/keyport?x=1", production);
    expect(check.ok && check.url.href).toBe("https://hooks.example.com/keyport?x=1");
  });

  it.each([
    ["https://127.0.0.1/hook", "loopback", "127.0.0.1 is a loopback address"],
    ["https://10.0.0.1/hook", "private", "10.0.0.1 is a private network address"],
    ["https://169.254.169.254/latest/meta-data/", "metadata", "169.254.169.254 is a cloud metadata address"],
    ["https://[::1]:8443/hook", "loopback", "::1 is a loopback address"],
    ["https://[::ffff:169.254.169.254]/", "metadata", "is a cloud metadata address"],
    // The URL parser reads these spellings as IPv4 addresses, and so does the check.
    ["https://2130706433/", "loopback", "127.0.0.1 is a loopback address"],
    ["https://0x7f.1/", "loopback", "127.0.0.1 is a loopback address"],
    ["https://0/", "unspecified", "0.0.0.0 is an unspecified address"],
  ])("refuses %s as %s", async (url, reason, text) => {
    const check = await checkWebhookUrl(url, production);
    expect(check).toMatchObject({ ok: false, reason });
    expect(check.ok ? "" : check.message).toContain("webhookUrl must point to a public address");
    expect(check.ok ? "" : check.message).toContain(text);
  });

  it("refuses a host name that resolves to a loopback address, naming the name and the address", async () => {
    const check = await checkWebhookUrl("https://rebind.example.com/hook", { ...production, resolve: resolveTo("127.0.0.1") });
    expect(check).toEqual({
      ok: false,
      reason: "loopback",
      message: "webhookUrl must point to a public address: rebind.example.com resolves to 127.0.0.1, a loopback address",
    });
  });

  it("refuses a host name with one private answer among public ones", async () => {
    const check = await checkWebhookUrl("https://mixed.example.com/", { ...production, resolve: resolveTo("93.184.215.14", "10.1.2.3") });
    expect(check).toMatchObject({ ok: false, reason: "private" });
  });

  it("refuses localhost through the system resolver", async () => {
    const check = await checkWebhookUrl("https://localhost:8443/hook", { requireHttps: true, allowPrivateAddresses: false });
    expect(check).toMatchObject({ ok: false, reason: "loopback" });
    expect(check.ok ? "" : check.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
  });

  it("refuses a name that does not resolve", async () => {
    const failing: ResolveHost = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" });
    };
    expect(await checkWebhookUrl("https://nowhere.invalid/", { ...production, resolve: failing })).toMatchObject({ ok: false, reason: "unresolvable" });
  });

  it("refuses http:// in production and accepts it otherwise", async () => {
    const refused = await checkWebhookUrl("http://hooks.example.com/", production);
    expect(refused).toEqual({ ok: false, reason: "https_required", message: "webhookUrl must use https:// (plain http:// is refused in production)" });
    expect((await checkWebhookUrl("http://hooks.example.com/", development)).ok).toBe(true);
  });

  it.each([
    ["not a url", "malformed"],
    ["/relative/path", "malformed"],
    [`https://example.com/${"a".repeat(2100)}`, "malformed"],
    ["ftp://example.com/", "scheme"],
    ["javascript:alert(1)", "scheme"],
    ["file:///etc/passwd", "scheme"],
    ["https://user:pass@example.com/", "credentials"],
    ["https://example.com/hook#part", "fragment"],
  ])("refuses %s (%s)", async (url, reason) => {
    expect(await checkWebhookUrl(url, development)).toMatchObject({ ok: false, reason });
  });

  it("skips the address checks (and DNS) when private addresses are allowed, but not the others", async () => {
    const noDns: ResolveHost = async () => {
      throw new Error("must not be called");
    };
    const allow: WebhookUrlPolicy = { requireHttps: true, allowPrivateAddresses: true, resolve: noDns };
    expect((await checkWebhookUrl("https://127.0.0.1:9000/hook", allow)).ok).toBe(true);
    expect((await checkWebhookUrl("https://localhost/hook", allow)).ok).toBe(true);
    expect(await checkWebhookUrl("http://127.0.0.1/hook", allow)).toMatchObject({ ok: false, reason: "https_required" });
  });

  it("throws a 400 invalid_webhook_url AppError from assertWebhookUrl", async () => {
    const error = await assertWebhookUrl("https://10.0.0.1/", production).catch((caught: unknown) => caught);
    expect(isAppError(error) && [error.code, error.status, error.publicMessage]).toEqual([
      "invalid_webhook_url",
      400,
      "webhookUrl must point to a public address: 10.0.0.1 is a private network address.",
    ]);
  });
});
