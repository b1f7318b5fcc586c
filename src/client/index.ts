/**
 * `keyport/client`: a small typed client for Keyport's management and operator API, for a
 * platform backend (with the end user's JWT, or the operator token) and for the Settings page
 * (with its portal session cookie and CSRF token). Its types are generated from the OpenAPI
 * document Keyport serves (`api-types.ts`, checked by a test against `/openapi.json`), and every
 * route it calls is a key of that document's `paths`, so the client cannot drift from the server.
 *
 * It imports nothing else from Keyport and needs only `fetch` (Node 18+, browsers).
 */
import type { components, operations, paths } from "./api-types.js";

export type { components, operations, paths };

type Schemas = components["schemas"];
export type ApiKey = Schemas["ApiKey"];
export type ApiKeyListing = Schemas["ApiKeyListing"];
export type ApiKeyTestResult = Schemas["ApiKeyTestResult"];
export type CreateApiKeyRequest = Schemas["CreateApiKeyRequest"];
export type UpdateApiKeyRequest = Schemas["UpdateApiKeyRequest"];
export type Plan = Schemas["Plan"];
export type ProviderRouting = Schemas["ProviderRouting"];
export type Provider = ApiKey["provider"];
export type KeyStatus = ApiKey["status"];
export type UsageReport = Schemas["UsageReport"];
export type AuditEvent = Schemas["AuditEvent"];
export type AuditEventList = Schemas["AuditEventList"];
export type PortalTheme = Schemas["PortalTheme"];
export type PortalSessionLink = Schemas["PortalSessionLink"];
export type CreatePortalSessionRequest = Schemas["CreatePortalSessionRequest"];
export type CurrentPortalSession = Schemas["CurrentPortalSession"];
export type Limits = Schemas["Limits"];
export type SpendCap = Limits["caps"][number];
export type LimitsChange = NonNullable<operations["updateLimits"]["requestBody"]>["content"]["application/json"];
export type NotificationEventPage = Schemas["NotificationEventPage"];
export type OperatorUsageReport = Schemas["OperatorUsageReport"];
export type OperatorApiKey = Schemas["OperatorApiKey"];
export type OperatorApiKeyList = Schemas["OperatorApiKeyList"];
export type OperatorOwnerView = Schemas["OperatorOwnerView"];

/** The stable error codes of Keyport's API (`error.code` in every error answer). */
export type KeyportErrorCode = Schemas["Error"]["error"]["code"];

/**
 * Every failure of a client call. `code` is Keyport's error code, or `network_error` (Keyport
 * was not reached; `status` is 0) or `unexpected_response` (an answer that is not Keyport's,
 * e.g. from a proxy in between).
 */
export class KeyportError extends Error {
  override readonly name = "KeyportError";
  readonly status: number;
  readonly code: KeyportErrorCode | "network_error" | "unexpected_response";
  /** Keyport's error type (`invalid_request_error`, `authentication_error`, …). */
  readonly type: string;
  /** Quote it when asking the operator about a failed call. */
  readonly requestId: string | undefined;

  constructor(init: { status: number; code: KeyportError["code"]; type: string; message: string; requestId?: string | undefined; cause?: unknown }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.type = init.type;
    this.requestId = init.requestId;
  }
}

export type KeyportClientOptions = {
  /** Where Keyport is, e.g. `https://keyport.internal:8787`; `""` in a page Keyport serves itself. */
  baseUrl: string;
  /**
   * The bearer credential: an end user's JWT for their keys, usage and audit trail, or
   * `KEYPORT_ADMIN_TOKEN` for operator routes (portal sessions). A function is asked before each
   * request (short-lived tokens). Leave it out in the Settings page, whose cookie authenticates.
   */
  token?: string | (() => string | Promise<string>);
  /** The Settings page's CSRF token (`portalSessions.current()`), sent with every change. */
  csrfToken?: () => string | undefined;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
};

type Method = "get" | "post" | "put" | "patch" | "delete";

/** A route of the API document, or one under `/api/v1` that a newer Keyport has (untyped). */
export type ApiPath = keyof paths | `/api/v1/${string}`;

/** The JSON body of one answer of one operation. */
type JsonResponse<K extends keyof operations, S extends keyof operations[K]["responses"]> = operations[K]["responses"][S] extends {
  content: { "application/json": infer Body };
}
  ? Body
  : never;

type Query<K extends keyof operations> = operations[K]["parameters"]["query"];

export type UsageQuery = NonNullable<Query<"getUsage">>;
export type AuditQuery = { cursor?: string; limit?: number };
export type EventsQuery = { cursor?: string; limit?: number };
export type OperatorUsageQuery = NonNullable<Query<"getOperatorUsage">>;
export type OperatorKeysQuery = NonNullable<Query<"listOperatorKeys">>;

export type RequestOptions = {
  /** Values for `{name}` placeholders in the path. */
  path?: Record<string, string>;
  query?: Record<string, string | number | undefined> | undefined;
  body?: unknown;
  headers?: Record<string, string>;
  /** `json` (default), `text`, or `none` (204). */
  expect?: "json" | "text" | "none";
};

const SAFE_METHODS = new Set<Method>(["get"]);

/** Creates a client; see `KeyportClientOptions`. */
export function createKeyportClient(options: KeyportClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => fetch(input, init));

  function url(path: ApiPath, request: RequestOptions): string {
    const filled = path.replace(/\{(\w+)\}/g, (_match, name: string) => {
      const value = request.path?.[name];
      if (value === undefined) throw new TypeError(`Missing path parameter ${name} for ${path}`);
      return encodeURIComponent(value);
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) search.set(name, String(value));
    const query = search.toString();
    return `${baseUrl}${filled}${query === "" ? "" : `?${query}`}`;
  }

  /**
   * One request to a route of the API document. The typed methods below use it; it is exported
   * for routes added to Keyport after this client was built. Throws `KeyportError`.
   */
  async function request<T>(method: Method, path: ApiPath, request: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: request.expect === "text" ? "text/csv, application/json" : "application/json", ...request.headers };
    const token = typeof options.token === "function" ? await options.token() : options.token;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const csrfToken = SAFE_METHODS.has(method) ? undefined : options.csrfToken?.();
    if (csrfToken !== undefined) headers["x-csrf-token"] = csrfToken;
    if (request.body !== undefined) headers["content-type"] = "application/json";

    let response: Response;
    try {
      response = await fetchImpl(url(path, request), {
        method: method.toUpperCase(),
        headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      });
    } catch (error) {
      throw new KeyportError({ status: 0, code: "network_error", type: "network_error", message: "Keyport could not be reached.", cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw errorFrom(response, text);
    if (request.expect === "none") return undefined as T;
    if (request.expect === "text") return text as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new KeyportError({ status: response.status, code: "unexpected_response", type: "unexpected_response", message: "Keyport's answer was not JSON.", cause: error });
    }
  }

  return {
    request,

    apiKeys: {
      /** The owner's keys, their plan, and which key pays for each provider. */
      list: (query?: Query<"listApiKeys">) => request<JsonResponse<"listApiKeys", 200>>("get", "/api/v1/api-keys", { query }),
      get: (id: string) => request<JsonResponse<"getApiKey", 200>>("get", "/api/v1/api-keys/{id}", { path: { id } }),
      /** Stores a key after a format check and a live check; `idempotencyKey` makes a retry safe. */
      create: (body: CreateApiKeyRequest, createOptions: { idempotencyKey?: string } = {}) =>
        request<JsonResponse<"createApiKey", 201>>("post", "/api/v1/api-keys", {
          body,
          ...(createOptions.idempotencyKey === undefined ? {} : { headers: { "idempotency-key": createOptions.idempotencyKey } }),
        }),
      update: (id: string, body: UpdateApiKeyRequest) => request<JsonResponse<"updateApiKey", 200>>("patch", "/api/v1/api-keys/{id}", { path: { id }, body }),
      /** Replaces the secret in place (rotation): same id, new hint, checked again. */
      replaceSecret: (id: string, apiKey: string) =>
        request<JsonResponse<"replaceApiKeySecret", 200>>("put", "/api/v1/api-keys/{id}/secret", { path: { id }, body: { apiKey } }),
      test: (id: string) => request<JsonResponse<"testApiKey", 200>>("post", "/api/v1/api-keys/{id}/test", { path: { id } }),
      delete: (id: string) => request<void>("delete", "/api/v1/api-keys/{id}", { path: { id }, expect: "none" }),
    },

    usage: {
      get: (query?: UsageQuery) => request<JsonResponse<"getUsage", 200>>("get", "/api/v1/usage", { query }),
      csv: (query?: UsageQuery) => request<string>("get", "/api/v1/usage.csv", { query, expect: "text" }),
      /** The CSV's URL, for a download link in a page that Keyport's cookie authenticates. */
      csvUrl: (query?: UsageQuery) => url("/api/v1/usage.csv", { query }),
    },

    audit: {
      /** Newest first; pass the answer's `nextCursor` as `cursor` for the next page. */
      list: (query: AuditQuery = {}) =>
        request<JsonResponse<"listAuditEvents", 200>>("get", "/api/v1/audit", {
          query: { cursor: query.cursor, limit: query.limit },
        }),
    },

    limits: {
      /** The owner's budget, alert threshold, notification targets, this month's spend and every cap that applies. */
      get: () => request<JsonResponse<"getLimits", 200>>("get", "/api/v1/limits"),
      /** Changes the fields given; `null` clears one. A bad value is a 400 whose message names the field. */
      update: (change: LimitsChange) => request<JsonResponse<"updateLimits", 200>>("put", "/api/v1/limits", { body: change }),
      /** A new webhook signing secret; the old one keeps signing next to it for 24 hours. */
      rotateWebhookSecret: () => request<JsonResponse<"rotateWebhookSecret", 200>>("post", "/api/v1/limits/webhook-secret"),
    },

    events: {
      /** The owner's notification events with each delivery's state, newest first; page with `nextCursor`. */
      list: (query: EventsQuery = {}) =>
        request<JsonResponse<"listEvents", 200>>("get", "/api/v1/events", {
          query: { cursor: query.cursor, limit: query.limit },
        }),
    },

    portalSessions: {
      /** Operator token: a one-time link to an owner's Settings page. */
      create: (body: CreatePortalSessionRequest) => request<JsonResponse<"createPortalSession", 201>>("post", "/api/v1/portal-sessions", { body }),
      /** In the Settings page: its session, with the CSRF token for changes. */
      current: () => request<JsonResponse<"getCurrentPortalSession", 200>>("get", "/api/v1/portal-sessions/current"),
      endCurrent: () => request<void>("delete", "/api/v1/portal-sessions/current", { expect: "none" }),
    },

    /** Operator token only. */
    admin: {
      /** Usage across owners in whole UTC days; pass `nextCursor` as `cursor` for the next groups. */
      usage: (query?: OperatorUsageQuery) => request<JsonResponse<"getOperatorUsage", 200>>("get", "/api/v1/admin/usage", { query }),
      /** Keys needing attention (invalid, no credits, undecryptable) with their owners. */
      keys: (query?: OperatorKeysQuery) => request<JsonResponse<"listOperatorKeys", 200>>("get", "/api/v1/admin/keys", { query }),
      /** One owner's keys (hints only) and usage. */
      owner: (owner: string, query?: NonNullable<Query<"getOperatorOwner">>) =>
        request<JsonResponse<"getOperatorOwner", 200>>("get", "/api/v1/admin/owners/{owner}", { path: { owner }, query }),
    },
  };
}

export type KeyportClient = ReturnType<typeof createKeyportClient>;

function errorFrom(response: Response, text: string): KeyportError {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const error = (body as { error?: { code?: unknown; type?: unknown; message?: unknown; requestId?: unknown } } | undefined)?.error;
  if (error !== undefined && typeof error.code === "string" && typeof error.message === "string") {
    return new KeyportError({
      status: response.status,
      code: error.code as KeyportErrorCode,
      type: typeof error.type === "string" ? error.type : "api_error",
      message: error.message,
      requestId: typeof error.requestId === "string" ? error.requestId : requestId,
    });
  }
  return new KeyportError({ status: response.status, code: "unexpected_response", type: "unexpected_response", message: `Keyport answered ${response.status}.`, requestId });
}
