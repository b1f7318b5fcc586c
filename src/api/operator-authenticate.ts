import type { FastifyRequest } from "fastify";
import { readBearerToken } from "../auth/read-credential.js";
import { AppError } from "../lib/errors.js";

/**
 * onRequest hook for operator routes: `Authorization: Bearer <KEYPORT_ADMIN_TOKEN>`, compared in
 * constant time by `isOperatorToken`. Without a configured token the routes answer 403: they
 * are off, whatever is presented.
 */
export function createOperatorAuthenticate(options: { isConfigured: boolean; isOperatorToken: (presented: string | undefined) => boolean }) {
  return async function authenticateOperator(request: FastifyRequest): Promise<void> {
    if (!options.isConfigured) throw new AppError("forbidden", "Operator routes are off: set KEYPORT_ADMIN_TOKEN to use them.");
    const token = readBearerToken(request.headers, { allowXApiKey: false });
    if (!options.isOperatorToken(token)) {
      throw new AppError("unauthenticated", "Operator routes need Authorization: Bearer <KEYPORT_ADMIN_TOKEN>.");
    }
  };
}
