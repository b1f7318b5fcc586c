import type { FastifyInstance } from "fastify";
import type { KeyService } from "../vault/key-service.js";
import type { CreateKey } from "../vault/create-key.js";
import { AppError } from "../lib/errors.js";
import { actorOf, principalOf } from "./authenticate.js";
import {
  commonErrorResponses,
  CreateKeyBody,
  ErrorEnvelope,
  KeyIdParams,
  KeyList,
  KeyObject,
  KeyTestResult,
  ListKeysQuery,
  ReplaceSecretBody,
  UpdateKeyBody,
} from "./schemas.js";

export type KeyRoutesDeps = { keyService: KeyService; createKey: CreateKey };

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** `/api/v1/api-keys`: thin handlers; the vault services decide. */
export function registerKeyRoutes(app: FastifyInstance, { keyService, createKey }: KeyRoutesDeps): void {
  const tags = ["api-keys"];

  app.post(
    "/api/v1/api-keys",
    {
      schema: {
        tags,
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
      return reply.status(201).send(view);
    },
  );

  app.get(
    "/api/v1/api-keys",
    { schema: { tags, summary: "List the owner's keys", querystring: ListKeysQuery, response: { 200: KeyList, ...commonErrorResponses } } },
    async (request) => {
      const { provider } = request.query as ListKeysQuery;
      return { keys: await keyService.list(principalOf(request).owner, provider) };
    },
  );

  app.get(
    "/api/v1/api-keys/:id",
    { schema: { tags, summary: "Get one key", params: KeyIdParams, response: { 200: KeyObject, ...commonErrorResponses } } },
    async (request) => keyService.get(principalOf(request).owner, (request.params as KeyIdParams).id),
  );

  app.patch(
    "/api/v1/api-keys/:id",
    {
      schema: {
        tags,
        summary: "Change label, activation or monthly limit; activating deactivates the owner's other keys of that provider",
        params: KeyIdParams,
        body: UpdateKeyBody,
        response: { 200: KeyObject, ...commonErrorResponses },
      },
    },
    async (request) => {
      const body = request.body as UpdateKeyBody;
      return keyService.update(principalOf(request).owner, (request.params as KeyIdParams).id, body, actorOf(request));
    },
  );

  app.put(
    "/api/v1/api-keys/:id/secret",
    {
      schema: {
        tags,
        summary: "Replace the secret in place (re-validated, new hint)",
        params: KeyIdParams,
        body: ReplaceSecretBody,
        response: { 200: KeyObject, 409: ErrorEnvelope, 422: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { apiKey } = request.body as ReplaceSecretBody;
      return keyService.replaceSecret(principalOf(request).owner, (request.params as KeyIdParams).id, apiKey, actorOf(request));
    },
  );

  app.post(
    "/api/v1/api-keys/:id/test",
    {
      schema: {
        tags,
        summary: "Check the key against its provider now and update its status",
        params: KeyIdParams,
        response: { 200: KeyTestResult, 409: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request) => keyService.test(principalOf(request).owner, (request.params as KeyIdParams).id, actorOf(request)),
  );

  app.delete(
    "/api/v1/api-keys/:id",
    {
      schema: { tags, summary: "Delete the key (the ciphertext is gone; the audit trail stays)", params: KeyIdParams, response: { 204: { type: "null" }, ...commonErrorResponses } },
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
