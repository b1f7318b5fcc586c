import { type Static, Type } from "@sinclair/typebox";
import { AUDIT_EVENT_TYPES, KEY_CHECK_RESULTS, KEY_STATUSES, PROVIDER_IDS } from "../lib/domain.js";
import { type ErrorCode, errorCodes } from "../lib/errors.js";

/**
 * Request and response schemas of the management API. Requests reject unknown fields and wrong
 * types (Ajv runs without coercion or stripping); responses are allowlists: a field that is not
 * listed here never leaves the server. A schema's `title` names it in the OpenAPI document
 * (`components.schemas`, see `openapi-components.ts`), which the typed client is generated from.
 */

/** A string enum whose static type is the literal union (TypeBox's `Union` of a mapped array loses it). */
const literalUnion = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: "string", enum: [...values] });

export const Provider = literalUnion(PROVIDER_IDS);
const Timestamp = Type.String({ format: "date-time" });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

/** Labels are shown in UIs and audit trails: printable, single line. */
const Label = Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$" });
/** Provider keys are checked for shape by the adapters; this only bounds the size. */
const ApiKeyInput = Type.String({ minLength: 1, maxLength: 1024 });
const UsdAmount = Type.Number({ minimum: 0, maximum: 1_000_000 });

export const KeyIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
export type KeyIdParams = Static<typeof KeyIdParams>;

export const CreateKeyBody = Type.Object(
  {
    provider: Provider,
    apiKey: ApiKeyInput,
    label: Type.Optional(Label),
    activate: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: "CreateApiKeyRequest" },
);
export type CreateKeyBody = Static<typeof CreateKeyBody>;

export const UpdateKeyBody = Type.Object(
  {
    label: Type.Optional(Label),
    isActive: Type.Optional(Type.Boolean()),
    monthlyLimitUsd: Type.Optional(Type.Union([UsdAmount, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1, title: "UpdateApiKeyRequest" },
);
export type UpdateKeyBody = Static<typeof UpdateKeyBody>;

export const ReplaceSecretBody = Type.Object({ apiKey: ApiKeyInput }, { additionalProperties: false, title: "ReplaceApiKeySecretRequest" });
export type ReplaceSecretBody = Static<typeof ReplaceSecretBody>;

export const ListKeysQuery = Type.Object({ provider: Type.Optional(Provider) }, { additionalProperties: false });
export type ListKeysQuery = Static<typeof ListKeysQuery>;

export const KeyObject = Type.Object(
  {
    id: Type.String(),
    provider: Provider,
    label: Type.String(),
    keyHint: Type.String({ description: "`****...` and the key's last four characters" }),
    status: literalUnion(KEY_STATUSES),
    statusDetail: Type.Union([Type.String(), Type.Null()]),
    statusChangedAt: Timestamp,
    isActive: Type.Boolean(),
    monthlyLimitUsd: Type.Union([Type.Number(), Type.Null()]),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    lastTestedAt: NullableTimestamp,
    lastUsedAt: NullableTimestamp,
    totalRequests: Type.Integer(),
    totalTokens: Type.Integer(),
    estimatedCostUsd: Type.Number(),
    byokAllowed: Type.Optional(
      Type.Boolean({ description: "whether the caller's plan lets calls use this key; stored keys stay stored either way" }),
    ),
  },
  { additionalProperties: false, title: "ApiKey" },
);

export const KeyList = Type.Object({ keys: Type.Array(KeyObject) }, { additionalProperties: false, title: "ApiKeyList" });

export const KeyTestResult = Type.Object(
  { result: literalUnion(KEY_CHECK_RESULTS), message: Type.String(), key: KeyObject },
  { additionalProperties: false, title: "ApiKeyTestResult" },
);

export const AuditQuery = Type.Object(
  {
    // Checked by the route, so every malformed cursor is one `invalid_cursor`, whatever its length.
    cursor: Type.Optional(Type.String({ description: "`nextCursor` of the previous page" })),
    limit: Type.Optional(Type.String({ pattern: "^(?:[1-9][0-9]?|100)$", description: "1 to 100, default 50" })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditEventObject = Type.Object(
  {
    id: Type.String(),
    type: literalUnion(AUDIT_EVENT_TYPES),
    keyId: Type.Union([Type.String(), Type.Null()]),
    actor: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    detail: Type.Record(Type.String(), Type.Unknown()),
    createdAt: Timestamp,
  },
  { additionalProperties: false, title: "AuditEvent" },
);

export const AuditList = Type.Object(
  { events: Type.Array(AuditEventObject), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false, title: "AuditEventList" },
);

export const ErrorEnvelope = Type.Object(
  {
    error: Type.Object(
      {
        type: Type.String(),
        code: literalUnion(Object.keys(errorCodes) as ErrorCode[]),
        message: Type.String(),
        requestId: Type.String(),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, title: "Error" },
);

/** Error responses every authenticated route can give. */
export const commonErrorResponses = {
  400: ErrorEnvelope,
  401: ErrorEnvelope,
  404: ErrorEnvelope,
  413: ErrorEnvelope,
  415: ErrorEnvelope,
  429: ErrorEnvelope,
  500: ErrorEnvelope,
};
