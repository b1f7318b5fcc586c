import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { type KeyStatus, OWNER_PATTERN, PROVIDER_IDS } from "../lib/domain.js";
import { AppError } from "../lib/errors.js";
import { isIdOf } from "../lib/ids.js";
import type { OperatorUsageReporter } from "../usage/operator-usage-report.js";
import type { UsageReporter } from "../usage/usage-report.js";
import type { KeyService } from "../vault/key-service.js";
import type { OperatorKeys } from "../vault/operator-keys.js";
import { commonErrorResponses, ErrorEnvelope, KeyObject } from "./schemas.js";
import { UsageQuery, UsageReport, UsageRowFields } from "./usage-routes.js";

/** The statuses that need someone to act: the key is refused, out of credit, or its secret does not open. */
const ATTENTION: readonly KeyStatus[] = ["invalid", "no_credits", "undecryptable"];

const OPERATOR_GROUP_BY = ["owner", "provider", "model", "source", "day", "tier"] as const;

const enumOf = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: "string", enum: [...values] });

const OperatorUsageQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ maxLength: 10, description: "first UTC day (YYYY-MM-DD); default: the first day of this month" })),
    to: Type.Optional(Type.String({ maxLength: 10, description: "the UTC day after the last one (exclusive); default: tomorrow" })),
    groupBy: Type.Optional(
      Type.Unsafe<(typeof OPERATOR_GROUP_BY)[number]>({
        type: "string",
        enum: [...OPERATOR_GROUP_BY],
        description:
          "owner (default), provider, model, source (byok or platform), day, or tier: the caller's tier when the call was made, " +
          '"unknown" for records made before tiers were recorded; with source=platform, the platform key\'s spend per tier',
      }),
    ),
    source: Type.Optional(enumOf(["byok", "platform"] as const)),
    provider: Type.Optional(enumOf(PROVIDER_IDS)),
    cursor: Type.Optional(Type.String({ maxLength: 1024, description: "`nextCursor` of the previous page (same groupBy)" })),
    limit: Type.Optional(Type.String({ pattern: "^(?:[1-9][0-9]{0,2}|1000)$", description: "1 to 1000, default 100" })),
  },
  { additionalProperties: false },
);
type OperatorUsageQuery = Static<typeof OperatorUsageQuery>;

const OperatorUsageReport = Type.Object(
  {
    from: Type.String(),
    to: Type.String(),
    groupBy: Type.String(),
    source: Type.Union([Type.String(), Type.Null()]),
    provider: Type.Union([Type.String(), Type.Null()]),
    totals: Type.Object(UsageRowFields, { additionalProperties: false }),
    groups: Type.Array(Type.Object({ group: Type.String(), ...UsageRowFields }, { additionalProperties: false })),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false, title: "OperatorUsageReport" },
);

const OperatorKeysQuery = Type.Object(
  {
    status: Type.Optional(enumOf(["attention", ...ATTENTION] as const)),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: "`nextCursor` of the previous page" })),
    limit: Type.Optional(Type.String({ pattern: "^(?:[1-9][0-9]?|100)$", description: "1 to 100, default 50" })),
  },
  { additionalProperties: false },
);
type OperatorKeysQuery = Static<typeof OperatorKeysQuery>;

/** A key as the operator sees it: the owner's view of it (hint, never the secret) and whose it is. */
const OperatorKey = Type.Object({ owner: Type.String(), ...KeyObject.properties }, { additionalProperties: false, title: "OperatorApiKey" });

const OperatorKeyList = Type.Object(
  { keys: Type.Array(OperatorKey), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false, title: "OperatorApiKeyList" },
);

const OwnerParams = Type.Object({ owner: Type.String({ maxLength: 200, description: "`user:<id>` or `project:<id>`" }) }, { additionalProperties: false });
type OwnerParams = Static<typeof OwnerParams>;

const OperatorOwnerView = Type.Object(
  { owner: Type.String(), keys: Type.Array(KeyObject), usage: UsageReport },
  { additionalProperties: false, title: "OperatorOwnerView" },
);

export type OperatorRouteDeps = {
  usageAcrossOwners: OperatorUsageReporter;
  ownerUsage: UsageReporter;
  keysWithStatus: OperatorKeys;
  keyService: Pick<KeyService, "list">;
};

const tags = ["operator"];
const security = [{ operator: [] }];
const responses = { 403: ErrorEnvelope, ...commonErrorResponses };

/**
 * The operator API (`Authorization: Bearer <KEYPORT_ADMIN_TOKEN>`, checked by the scope's hook):
 * usage across owners, keys needing attention, and one owner's keys and usage for support. Keys
 * are rendered field by field through the owner's own view: a hint, never a ciphertext, a
 * fingerprint or a plaintext.
 */
export function registerOperatorRoutes(app: FastifyInstance, deps: OperatorRouteDeps): void {
  app.get(
    "/api/v1/admin/usage",
    {
      schema: {
        tags,
        operationId: "getOperatorUsage",
        summary: "Usage across owners in whole UTC days, grouped by owner, provider, model, key source, day or the caller's tier (operator token)",
        security,
        querystring: OperatorUsageQuery,
        response: { 200: OperatorUsageReport, ...responses },
      },
    },
    async (request, reply) => {
      const query = request.query as OperatorUsageQuery;
      reply.header("cache-control", "no-store");
      return deps.usageAcrossOwners({ ...query, limit: query.limit === undefined ? undefined : Number(query.limit) });
    },
  );

  app.get(
    "/api/v1/admin/keys",
    {
      schema: {
        tags,
        operationId: "listOperatorKeys",
        summary: "Keys needing attention (invalid, no credits, undecryptable) across owners, oldest first (operator token)",
        security,
        querystring: OperatorKeysQuery,
        response: { 200: OperatorKeyList, ...responses },
      },
    },
    async (request, reply) => {
      const query = request.query as OperatorKeysQuery;
      if (query.cursor !== undefined && !isIdOf("key", query.cursor)) throw new AppError("invalid_cursor", "cursor must be the nextCursor of a previous page.");
      const limit = query.limit === undefined ? 50 : Number(query.limit);
      const statuses = query.status === undefined || query.status === "attention" ? ATTENTION : [query.status];
      const keys = await deps.keysWithStatus(statuses, { ...(query.cursor === undefined ? {} : { afterId: query.cursor }), limit: limit + 1 });
      const page = keys.slice(0, limit);
      reply.header("cache-control", "no-store");
      return { keys: page, nextCursor: keys.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    "/api/v1/admin/owners/:owner",
    {
      schema: {
        tags,
        operationId: "getOperatorOwner",
        summary: "One owner's keys (hints only) and usage (the owner's report, grouped by provider by default), for support (operator token)",
        security,
        params: OwnerParams,
        querystring: UsageQuery,
        response: { 200: OperatorOwnerView, ...responses },
      },
    },
    async (request, reply) => {
      const { owner } = request.params as OwnerParams;
      if (!OWNER_PATTERN.test(owner)) throw new AppError("invalid_request", "owner must be user:<id> or project:<id>.");
      const query = request.query as UsageQuery;
      const [keys, usage] = await Promise.all([deps.keyService.list(owner), deps.ownerUsage(owner, { ...query, groupBy: query.groupBy ?? "provider" })]);
      reply.header("cache-control", "no-store");
      return { owner, keys, usage };
    },
  );
}
