import { type Static, Type } from "@sinclair/typebox";
import { SUBJECT_PATTERN } from "../auth/principal.js";
import { TIER_NAME_PATTERN } from "../config/tiers.js";
import { OWNER_PATTERN } from "../lib/domain.js";

/** Schemas of the portal-session routes; the same conventions as `schemas.ts`. */

export const PortalTheme = Type.Object(
  {
    mode: Type.Optional(Type.Unsafe<"light" | "dark">({ type: "string", enum: ["light", "dark"] })),
    accentColor: Type.Optional(Type.String({ pattern: "^#[0-9a-fA-F]{6}$", description: "`#rrggbb`" })),
    productName: Type.Optional(Type.String({ minLength: 1, maxLength: 60, pattern: "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$" })),
  },
  { additionalProperties: false, title: "PortalTheme", description: "How the Settings page looks, so it matches the platform that opens it" },
);

export const CreatePortalSessionBody = Type.Object(
  {
    sub: Type.String({ pattern: SUBJECT_PATTERN.source, description: "the acting user, as in the JWT's `sub`" }),
    owner: Type.Optional(Type.String({ pattern: OWNER_PATTERN.source, description: "`user:<id>` or `project:<id>`; default `user:<sub>`" })),
    tier: Type.Optional(Type.String({ pattern: TIER_NAME_PATTERN.source, description: "a configured tier; default `KEYPORT_DEFAULT_TIER`" })),
    returnUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: "http(s) URL the page links back to" })),
    theme: Type.Optional(PortalTheme),
  },
  { additionalProperties: false, title: "CreatePortalSessionRequest" },
);
export type CreatePortalSessionBody = Static<typeof CreatePortalSessionBody>;

export const PortalSessionLink = Type.Object(
  {
    url: Type.String({ description: "one-time link to the Settings page; hand it to the user's browser" }),
    expiresAt: Type.String({ format: "date-time", description: "the link stops working after this" }),
  },
  { additionalProperties: false, title: "PortalSessionLink" },
);

export const CurrentPortalSession = Type.Object(
  {
    owner: Type.String(),
    sub: Type.String(),
    tier: Type.String(),
    expiresAt: Type.String({ format: "date-time" }),
    csrfToken: Type.String({ description: "send as `x-csrf-token` on every change" }),
    returnUrl: Type.Union([Type.String(), Type.Null()]),
    theme: PortalTheme,
  },
  { additionalProperties: false, title: "CurrentPortalSession" },
);
