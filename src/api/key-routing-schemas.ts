import { Type } from "@sinclair/typebox";
import { KeyObject, Provider } from "./schemas.js";

/** `GET /api/v1/api-keys`: the keys, the owner's plan, and which key pays for each provider. */

const PlatformReason = Type.Unsafe<"no_own_key" | "byok_not_allowed" | "own_key_unusable">({
  type: "string",
  enum: ["no_own_key", "byok_not_allowed", "own_key_unusable"],
});

export const Plan = Type.Object(
  {
    tier: Type.String(),
    byokAllowed: Type.Boolean({ description: "whether calls use the owner's own keys on this plan" }),
    platformRequestsPerMinute: Type.Integer({ description: "platform-key requests per minute on this plan" }),
    platformRequestsPerDay: Type.Integer(),
    upgradeHint: Type.Union([Type.String(), Type.Null()], { description: "the operator's text for plans without BYOK" }),
    upgradeUrl: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false, title: "Plan" },
);

export const ProviderRouting = Type.Object(
  {
    provider: Provider,
    source: Type.Unsafe<"byok" | "platform" | "none" | "blocked">({
      type: "string",
      enum: ["byok", "platform", "none", "blocked"],
      description: "who pays for this provider's calls now: the owner's key, the platform's, nobody (calls are refused), or blocked (the active key must be re-entered)",
    }),
    reason: Type.Union([PlatformReason, Type.Null()], { description: "why the platform key (or none) serves" }),
    keyId: Type.Union([Type.String(), Type.Null()], { description: "the owner's key that serves (byok) or blocks (blocked)" }),
    platformKeyAvailable: Type.Boolean(),
  },
  { additionalProperties: false, title: "ProviderRouting" },
);

export const ApiKeyListing = Type.Object(
  { keys: Type.Array(KeyObject), plan: Plan, providers: Type.Array(ProviderRouting) },
  { additionalProperties: false, title: "ApiKeyListing" },
);
