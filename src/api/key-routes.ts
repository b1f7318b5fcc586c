import type { FastifyInstance, FastifyRequest } from "fastify";
import type { KeyService } from "../vault/key-service.js";
import type { CreateKey } from "../vault/create-key.js";
import type { KeyRouting } from "./key-routing-view.js";
import type { KeyView } from "../vault/key-view.js";
import { AppError } from "../lib/errors.js";
import { actorOf, principalOf } from "./authenticate.js";
import { ApiKeyListing } from "./key-routing-schemas.js";
import {
  commonErrorResponses,
  CreateKeyBody,
  ErrorEnvelope,
  KeyIdParams,
  KeyObject,
  KeyTestResult,
  ListKeysQuery,
  ReplaceSecretBody,
  UpdateKeyBody,
} from "./schemas.js";

export type KeyRoutesDeps = { keyService: KeyService; createKey: CreateKey; routing: KeyRouting };

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** `/api/v1/api-keys`: thin handlers; the vault services decide. */
export function registerKeyRoutes(app: FastifyInstance, { keyService, createKey, routing }: KeyRoutesDeps): void {
  const tags = ["api-keys"];
  /** Every key object says whether the caller's plan lets calls use it (a stored key stays stored either way). */
  const withPlan = (request: FastifyRequest, view: KeyView) => ({ ...view, byokAllowed: routing.isByokAllowed(principalOf(request)) });

  app.post(
    "/api/v1/api-keys",
    {
      schema: {
        tags,
        operationId: "createApiKey",
        summary: "Store a provider key (format check, live validation)",
        headers: { type: "object", properties: { "idempotency-key": { type: "string" } } },
        body: CreateKeyBody,
        response: { 201: KeyObject, 409: ErrorEnvelope, 422: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body as CreateKeyBody;
      const view = await createKey({
        owner: principalOf(request).owner,
        actor: actorOf(request),
        provider: body.provider,
        apiKey: body.apiKey,
        label: body.label,
        activate: body.activate,
        idempotencyKey: readIdempotencyKey(request.headers["idempotency-key"]),
      });
      return reply.status(201).send(withPlan(request, view));
    },
  );

  app.get(
    "/api/v1/api-keys",
    {
      schema: {
        tags,
        operationId: "listApiKeys",
        summary: "List the owner's keys, with the owner's plan and which key pays for each provider",
        querystring: ListKeysQuery,
        response: { 200: ApiKeyListing, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { provider } = request.query as ListKeysQuery;
      const principal = principalOf(request);
      const all = await keyService.list(principal.owner);
      return {
        keys: all.filter((key) => provider === undefined || key.provider === provider).map((key) => withPlan(request, key)),
        plan: routing.plan(principal),
        providers: routing.providers(principal, all),
      };
    },
  );

  app.get(
    "/api/v1/api-keys/:id",
    { schema: { tags, operationId: "getApiKey", summary: "Get one key", params: KeyIdParams, response: { 200: KeyObject, ...commonErrorResponses } } },
    async (request) => withPlan(request, await keyService.get(principalOf(request).owner, (request.params as KeyIdParams).id)),
  );

  app.patch(
    "/api/v1/api-keys/:id",
    {
      schema: {
        tags,
        operationId: "updateApiKey",
        summary: "Change label, activation or monthly limit; activating deactivates the owner's other keys of that provider",
        params: KeyIdParams,
        body: UpdateKeyBody,
        response: { 200: KeyObject, ...commonErrorResponses },
      },
    },
    async (request) => {
      const body = request.body as UpdateKeyBody;
      return withPlan(request, await keyService.update(principalOf(request).owner, (request.params as KeyIdParams).id, body, actorOf(request)));
    },
  );

  app.put(
    "/api/v1/api-keys/:id/secret",
    {
      schema: {
        tags,
        operationId: "replaceApiKeySecret",
        summary: "Replace the secret in place (re-validated, new hint)",
        params: KeyIdParams,
        body: ReplaceSecretBody,
        response: { 200: KeyObject, 409: ErrorEnvelope, 422: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { apiKey } = request.body as ReplaceSecretBody;
      return withPlan(request, await keyService.replaceSecret(principalOf(request).owner, (request.params as KeyIdParams).id, apiKey, actorOf(request)));
    },
  );

  app.post(
    "/api/v1/api-keys/:id/test",
    {
      schema: {
        tags,
        operationId: "testApiKey",
        summary: "Check the key against its provider now and update its status",
        params: KeyIdParams,
        response: { 200: KeyTestResult, 409: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request) => {
      const outcome = await keyService.test(principalOf(request).owner, (request.params as KeyIdParams).id, actorOf(request));
      return { ...outcome, key: withPlan(request, outcome.key) };
    },
  );

  app.delete(
    "/api/v1/api-keys/:id",
    {
      schema: { tags, operationId: "deleteApiKey", summary: "Delete the key (the ciphertext is gone; the audit trail stays)", params: KeyIdParams, response: { 204: { type: "null" }, ...commonErrorResponses } },
    },
    async (request, reply) => {
      await keyService.remove(principalOf(request).owner, (request.params as KeyIdParams).id, actorOf(request));
      return reply.status(204).send();
    },
  );
}

function readIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw new AppError("invalid_request", "Idempotency-Key must be 1 to 255 visible ASCII characters.");
  }
  return value;
}
