import { createServer, type Server, Socket } from "node:net";

/**
 * A TCP proxy a test puts between Keyport and a shared server (PostgreSQL, Redis) to inject
 * network faults without touching the server itself:
 * - `pause()`: a black hole. Connections stay open but no byte passes either way (new ones are
 *   accepted and held too), as in a network partition; `resume()` delivers what was held.
 * - `cut()`: every connection is reset, and new ones are reset as soon as they arrive, as when
 *   the server is down; `restore()` lets new connections through again.
 */
export type TcpProxy = {
  /** `127.0.0.1:<port>`: put it in the URL in place of the server's host and port. */
  readonly address: string;
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  pause(): void;
  resume(): void;
  cut(): void;
  restore(): void;
  /** Connections currently open through the proxy. */
  connectionCount(): number;
  close(): Promise<void>;
};

type Pair = { client: Socket; upstream: Socket; held: { toUpstream: Buffer[]; toClient: Buffer[] } };

/** Starts a proxy on a random local port forwarding to `target` (`host:port`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(`tcp://${target}`);
  const pairs = new Set<Pair>();
  let isPaused = false;
  let isCut = false;

  const server: Server = createServer((client) => {
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    const pair: Pair = { client, upstream, held: { toUpstream: [], toClient: [] } };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (isPaused) pair.held.toUpstream.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (isPaused) pair.held.toClient.push(chunk);
      else client.write(chunk);
    });
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    upstream.connect(Number(targetPort), hostname === "" ? "127.0.0.1" : hostname);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
  const port = address.port;

  return {
    address: `127.0.0.1:${port}`,
    port,
    urlFor(url: string): string {
      const parsed = new URL(url);
      parsed.hostname = "127.0.0.1";
      parsed.port = String(port);
      return parsed.toString();
    },
    pause(): void {
      isPaused = true;
    },
    resume(): void {
      isPaused = false;
      for (const pair of pairs) {
        for (const chunk of pair.held.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.held.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    cut(): void {
      isCut = true;
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    restore(): void {
      isCut = false;
    },
    connectionCount: () => pairs.size,
    async close(): Promise<void> {
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
