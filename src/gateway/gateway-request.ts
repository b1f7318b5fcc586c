import type { IncomingHttpHeaders } from "node:http";

/** The few log methods the gateway uses (pino's). */
export type GatewayLog = {
  readonly level: string;
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
};

/** What the gateway pipeline needs to know about one incoming call. */
export type GatewayRequest = {
  id: string;
  /** The route's path as registered (`/openai/v1/chat/completions`), for logs. */
  routePath: string;
  /** Path and query as the client sent them. */
  url: string;
  headers: IncomingHttpHeaders;
  ip: string;
  body: Buffer | undefined;
  log: GatewayLog;
};
