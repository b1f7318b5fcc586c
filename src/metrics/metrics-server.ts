import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type MetricsServerOptions = {
  host: string;
  port: number;
  scrape: () => Promise<{ contentType: string; body: string }>;
  /** Whether a request's `authorization` header may read the metrics; `undefined`: open. */
  isAllowed: ((authorization: string | undefined) => boolean) | undefined;
  onError: (error: unknown) => void;
};

export type MetricsServer = {
  /** `http://host:port` it listens on. */
  url: string;
  close(): Promise<void>;
};

/**
 * A listener of its own for `GET /metrics` (`KEYPORT_METRICS_PORT`), so the scraper can reach it on
 * a private interface while the main port faces the internet. Serves nothing else.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" || path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found: only GET /metrics is served here.\n");
      return;
    }
    if (options.isAllowed !== undefined && !options.isAllowed(request.headers.authorization)) {
      response.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": "Bearer" }).end("Send Authorization: Bearer <KEYPORT_ADMIN_TOKEN>.\n");
      return;
    }
    options.scrape().then(
      ({ contentType, body }) => response.writeHead(200, { "content-type": contentType, "cache-control": "no-store" }).end(body),
      (error: unknown) => {
        options.onError(error);
        response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("Metrics could not be collected.\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
