import net from "node:net";

/**
 * Test setup: a connection from the test process to a real provider's API fails at once, so a
 * test that would depend on reaching OpenAI or Anthropic fails everywhere, not only offline.
 * (Processes a test starts get provider URLs pointing at a mock or at `NO_PROVIDER`.)
 */
const PROVIDER_HOSTS = new Set(["api.openai.com", "api.anthropic.com"]);

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const [first] = args;
  const host = typeof first === "object" && first !== null && "host" in first ? (first as { host?: unknown }).host : args[1];
  if (typeof host === "string" && PROVIDER_HOSTS.has(host.toLowerCase())) {
    throw new Error(`A test tried to reach ${host}: tests use keyport mock-provider, never a real provider.`);
  }
  return (connect as (...connectArgs: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
