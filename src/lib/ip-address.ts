/** `::ffff:192.0.2.1` (an IPv4 client on a dual-stack socket) is `192.0.2.1`; other addresses stay as they are. */
export function unmapIPv4(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped?.[1] ?? address;
}
