import type { FastifyInstance } from "fastify";
import type { AuditLog } from "../audit/audit-log.js";
import { AppError } from "../lib/errors.js";
import { isIdOf } from "../lib/ids.js";
import { principalOf } from "./authenticate.js";
import { AuditList, AuditQuery, commonErrorResponses } from "./schemas.js";

const DEFAULT_PAGE_SIZE = 50;

/** `GET /api/v1/audit`: the owner's events, newest first; `nextCursor` fetches the next page. */
export function registerAuditRoutes(app: FastifyInstance, { auditLog }: { auditLog: AuditLog }): void {
  app.get(
    "/api/v1/audit",
    {
      schema: {
        tags: ["audit"],
        operationId: "listAuditEvents",
        summary: "The owner's audit trail, newest first, cursor-paginated",
        querystring: AuditQuery,
        response: { 200: AuditList, ...commonErrorResponses },
      },
    },
    async (request) => {
      const query = request.query as AuditQuery;
      // A cursor is the id of the last event of a page; anything else would silently list from
      // the wrong place (`zzzz` sorts after every id: the first page again).
      if (query.cursor !== undefined && !isIdOf("evt", query.cursor)) {
        throw new AppError("invalid_cursor", "cursor must be the nextCursor of a previous page.");
      }
      const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
      const page = await auditLog.list(principalOf(request).owner, {
        ...(query.cursor === undefined ? {} : { before: query.cursor }),
        limit: limit + 1,
      });
      const events = page.slice(0, limit);
      const last = events.at(-1);
      return {
        events: events.map(({ owner: _owner, ...event }) => event),
        nextCursor: page.length > limit && last !== undefined ? last.id : null,
      };
    },
  );
}
