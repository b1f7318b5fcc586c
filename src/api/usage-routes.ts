import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { UsageReporter } from "../usage/usage-report.js";
import { usageReportCsv } from "../usage/usage-report.js";
import { principalOf } from "./authenticate.js";
import { commonErrorResponses } from "./schemas.js";

export const UsageQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ maxLength: 40, description: "inclusive; default: the first day of this UTC month" })),
    to: Type.Optional(Type.String({ maxLength: 40, description: "exclusive; default: now" })),
    groupBy: Type.Optional(Type.Unsafe<"day" | "model" | "key" | "provider">({ type: "string", enum: ["day", "model", "key", "provider"] })),
    source: Type.Optional(Type.Unsafe<"byok" | "platform">({ type: "string", enum: ["byok", "platform"] })),
  },
  { additionalProperties: false },
);
export type UsageQuery = Static<typeof UsageQuery>;

export const UsageRowFields = {
  requests: Type.Integer(),
  inputTokens: Type.Integer(),
  outputTokens: Type.Integer(),
  cachedInputTokens: Type.Integer(),
  estimatedCostUsd: Type.Number(),
  unpricedRequests: Type.Integer({ description: "calls to models without a known price (cost unknown, not zero)" }),
};

export const UsageReport = Type.Object(
  {
    from: Type.String(),
    to: Type.String(),
    groupBy: Type.String(),
    source: Type.Union([Type.String(), Type.Null()]),
    totals: Type.Object(UsageRowFields, { additionalProperties: false }),
    series: Type.Array(Type.Object({ group: Type.String(), ...UsageRowFields }, { additionalProperties: false })),
  },
  { additionalProperties: false, title: "UsageReport" },
);

/** `GET /api/v1/usage` and `/api/v1/usage.csv`: the owner's tokens, requests and estimated cost. */
export function registerUsageRoutes(app: FastifyInstance, { report }: { report: UsageReporter }): void {
  app.get(
    "/api/v1/usage",
    { schema: { tags: ["usage"], operationId: "getUsage", summary: "Usage totals and series", querystring: UsageQuery, response: { 200: UsageReport, ...commonErrorResponses } } },
    async (request) => report(principalOf(request).owner, request.query as UsageQuery),
  );
  app.get(
    "/api/v1/usage.csv",
    {
      schema: {
        tags: ["usage"],
        operationId: "getUsageCsv",
        summary: "The usage series as CSV",
        querystring: UsageQuery,
        response: { 200: { description: "One row per group", content: { "text/csv": { schema: { type: "string" } } } }, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const result = await report(principalOf(request).owner, request.query as UsageQuery);
      return reply
        .type("text/csv; charset=utf-8")
        .header("content-disposition", 'attachment; filename="keyport-usage.csv"')
        .send(usageReportCsv(result));
    },
  );
}
