import { BlockList, isIP } from "node:net";

/** Why an address is not a public internet address. */
export type AddressClass = "metadata" | "loopback" | "unspecified" | "link_local" | "private" | "shared" | "multicast" | "reserved";

type Rule = { kind: AddressClass; ipv4: readonly string[]; ipv6: readonly string[] };

/**
 * Ranges an owner's webhook must not reach, first match wins (so 169.254.169.254 is reported as
 * metadata, not merely link-local). IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are checked
 * against the IPv4 rules by `BlockList` itself; NAT64 (`64:ff9b::/96`) gets each IPv4 rule
 * mapped into it below; 6to4 and Teredo tunnels, which embed an IPv4 address, are refused whole.
 */
const RULES: readonly Rule[] = [
  {
    kind: "metadata",
    // AWS/GCP/Azure/OCI instance metadata; AWS ECS task metadata; Alibaba; Azure's wire server.
    ipv4: ["169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32", "168.63.129.16/32"],
    ipv6: ["fd00:ec2::254/128"],
  },
  { kind: "loopback", ipv4: ["127.0.0.0/8"], ipv6: ["::1/128"] },
  // 0.0.0.0 and :: reach this host on Linux.
  { kind: "unspecified", ipv4: ["0.0.0.0/8"], ipv6: ["::/128"] },
  { kind: "link_local", ipv4: ["169.254.0.0/16"], ipv6: ["fe80::/10"] },
  { kind: "private", ipv4: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], ipv6: ["fc00::/7"] },
  // Carrier-grade NAT: the provider's internal network, not the internet.
  { kind: "shared", ipv4: ["100.64.0.0/10"], ipv6: [] },
  { kind: "multicast", ipv4: ["224.0.0.0/4"], ipv6: ["ff00::/8"] },
  {
    kind: "reserved",
    ipv4: ["192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"],
    // IPv4-compatible (deprecated), discard-only, Teredo, documentation, 6to4, site-local (deprecated).
    ipv6: ["::/96", "100::/64", "2001::/32", "2001:db8::/32", "2002::/16", "fec0::/10"],
  },
];

function splitCidr(cidr: string): [string, number] {
  const [address = "", prefix = ""] = cidr.split("/");
  return [address, Number(prefix)];
}

const LISTS: readonly { kind: AddressClass; list: BlockList }[] = RULES.map((rule) => {
  const list = new BlockList();
  for (const cidr of rule.ipv4) {
    const [address, prefix] = splitCidr(cidr);
    list.addSubnet(address, prefix, "ipv4");
    // The same range reached through a NAT64 gateway.
    list.addSubnet(`64:ff9b::${address}`, 96 + prefix, "ipv6");
  }
  for (const cidr of rule.ipv6) {
    const [address, prefix] = splitCidr(cidr);
    list.addSubnet(address, prefix, "ipv6");
  }
  return { kind: rule.kind, list };
});

/**
 * The class of a non-public address, or `undefined` for a public one. Anything that is not an IP
 * address at all is `reserved`: the caller asked about an address, and an unparsable one must
 * never pass as public.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 0) return "reserved";
  const type = family === 4 ? "ipv4" : "ipv6";
  return LISTS.find(({ list }) => list.check(bare, type))?.kind;
}

const DESCRIPTIONS: Readonly<Record<AddressClass, string>> = {
  metadata: "a cloud metadata address",
  loopback: "a loopback address",
  unspecified: "an unspecified address (it reaches the server itself)",
  link_local: "a link-local address",
  private: "a private network address",
  shared: "a shared (carrier-grade NAT) address",
  multicast: "a multicast address",
  reserved: "a reserved address",
};

/** "a loopback address", for messages. */
export function describeAddressClass(kind: AddressClass): string {
  return DESCRIPTIONS[kind];
}
