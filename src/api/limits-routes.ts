import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { LimitsService, LimitsUpdate } from "../budgets/limits-service.js";
import type { WebhookSecrets } from "../notifications/webhook-secrets.js";
import { principalOf } from "./authenticate.js";
import { commonErrorResponses } from "./schemas.js";

const Usd = Type.Number({ description: "USD" });
const NullableUsd = Type.Union([Usd, Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const CapAmounts = { limitUsd: Usd, spentUsd: Usd, remainingUsd: Usd };

const Cap = Type.Union([
  Type.Object({ kind: Type.Literal("owner_budget"), ...CapAmounts }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal("key_limit"), keyId: Type.String(), label: Type.String(), provider: Type.String(), ...CapAmounts },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal("platform_allowance"), tier: Type.String(), ...CapAmounts }, { additionalProperties: false }),
]);

const Limits = Type.Object(
  {
    monthlyBudgetUsd: Type.Union([Usd, Type.Null()], { description: "hard cap on the owner's spend in a UTC calendar month; null: none" }),
    notifyThresholdUsd: Type.Union([Usd, Type.Null()], { description: "spend (settled plus reserved) at which `budget.threshold_reached` is sent, once a month" }),
    notifyEmail: NullableString,
    webhookUrl: NullableString,
    webhookSecret: Type.String({ description: "`whsec_…`: verifies the webhooks' signatures" }),
    period: Type.Object({ start: Type.String({ format: "date-time" }), resetsAt: Type.String({ format: "date-time" }) }, { additionalProperties: false }),
    spentUsd: Type.Number({ description: "this month's spend, settled plus still reserved, all sources" }),
    caps: Type.Array(Cap, { description: "every cap that applies, owner budget first" }),
  },
  { additionalProperties: false, title: "Limits" },
);

// Values are judged by the service, so every bad value gets a message naming its field.
const UpdateLimitsBody = Type.Object(
  {
    monthlyBudgetUsd: Type.Optional(NullableUsd),
    notifyThresholdUsd: Type.Optional(NullableUsd),
    notifyEmail: Type.Optional(NullableString),
    webhookUrl: Type.Optional(NullableString),
  },
  { additionalProperties: false, title: "UpdateLimitsRequest" },
);

export type LimitsRoutesDeps = { limits: LimitsService; webhookSecrets: Pick<WebhookSecrets, "reveal"> };

/** `GET` and `PUT /api/v1/limits`: the owner's budget, alert settings and every cap with this month's spend. */
export function registerLimitsRoutes(app: FastifyInstance, { limits, webhookSecrets }: LimitsRoutesDeps): void {
  const render = async (owner: string, view: Awaited<ReturnType<LimitsService["view"]>>) => ({
    ...view,
    webhookSecret: (await webhookSecrets.reveal(owner)).reveal(),
  });

  app.get(
    "/api/v1/limits",
    {
      schema: {
        tags: ["limits"],
        operationId: "getLimits",
        summary: "The owner's budget, alert threshold and targets, and every cap that applies with this month's spend and when it resets",
        response: { 200: Limits, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return render(principal.owner, await limits.view(principal.owner, principal.tier));
    },
  );

  app.put(
    "/api/v1/limits",
    {
      schema: {
        tags: ["limits"],
        operationId: "updateLimits",
        summary: "Change any of the budget, the alert threshold, the alert email and the webhook URL (null clears one; a field left out is unchanged)",
        body: UpdateLimitsBody,
        response: { 200: Limits, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const view = await limits.update(principal.owner, principal.tier, request.body as LimitsUpdate);
      return render(principal.owner, view);
    },
  );
}
