import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import type { ListEvents } from "../notifications/event-list.js";
import type { WebhookSecrets } from "../notifications/webhook-secrets.js";
import { principalOf } from "./authenticate.js";
import { EventsQuery, NotificationEventPage, WebhookSecretObject } from "./notification-schemas.js";
import { commonErrorResponses } from "./schemas.js";

const DEFAULT_PAGE_SIZE = 50;

export type NotificationRoutesDeps = { listEvents: ListEvents; webhookSecrets: Pick<WebhookSecrets, "rotate"> };

/** `GET /api/v1/events` and the webhook secret's rotation. */
export function registerNotificationRoutes(app: FastifyInstance, { listEvents, webhookSecrets }: NotificationRoutesDeps): void {
  app.get(
    "/api/v1/events",
    {
      schema: {
        tags: ["events"],
        operationId: "listEvents",
        summary: "The owner's notification events, newest first, with each delivery's state (webhook, email); cursor-paginated",
        querystring: EventsQuery,
        response: { 200: Type.Ref(NotificationEventPage), ...commonErrorResponses },
      },
    },
    async (request) => {
      const query = request.query as EventsQuery;
      return listEvents(principalOf(request).owner, {
        cursor: query.cursor,
        limit: query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit),
      });
    },
  );

  app.post(
    "/api/v1/limits/webhook-secret",
    {
      schema: {
        tags: ["limits"],
        operationId: "rotateWebhookSecret",
        summary: "Replace the webhook signing secret; for 24 hours webhooks are signed with the old and the new one",
        response: { 200: Type.Ref(WebhookSecretObject), ...commonErrorResponses },
      },
    },
    async (request) => ({ webhookSecret: (await webhookSecrets.rotate(principalOf(request).owner)).reveal() }),
  );
}
