import type { Kysely, Selectable } from "kysely";
import type { NewPortalLink, PortalSessionRepo, PortalSessionRow, PortalTheme } from "../ports.js";
import type { Database, PortalSessionsTable } from "./schema.js";

function parseTheme(text: string): PortalTheme {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("Column portal_sessions.theme does not hold a JSON object");
  }
  const record = value as Record<string, unknown>;
  const theme: PortalTheme = {};
  if (record.mode === "light" || record.mode === "dark") theme.mode = record.mode;
  if (typeof record.accentColor === "string") theme.accentColor = record.accentColor;
  if (typeof record.productName === "string") theme.productName = record.productName;
  return theme;
}

function toSession(row: Selectable<PortalSessionsTable>): PortalSessionRow {
  if (row.session_expires_at === null) throw new Error("Column portal_sessions.session_expires_at is null for an opened session");
  return {
    id: row.id,
    owner: row.owner,
    sub: row.sub,
    tier: row.tier,
    returnUrl: row.return_url,
    theme: parseTheme(row.theme),
    sessionExpiresAt: row.session_expires_at,
  };
}

/** The shared portal-session repository; tokens are known to it only as hashes. */
export function createPortalSessionRepo(db: Kysely<Database>): PortalSessionRepo {
  return {
    async insertLink(link: NewPortalLink): Promise<void> {
      await db
        .insertInto("portal_sessions")
        .values({
          id: link.id,
          link_hash: link.linkHash,
          session_hash: null,
          owner: link.owner,
          sub: link.sub,
          tier: link.tier,
          return_url: link.returnUrl,
          theme: JSON.stringify(link.theme),
          created_at: link.createdAt,
          link_expires_at: link.linkExpiresAt,
          opened_at: null,
          session_expires_at: null,
        })
        .execute();
    },

    async open(linkHash, session) {
      // One statement decides: of two openings racing on any instances, exactly one updates the row.
      const opened = await db
        .updateTable("portal_sessions")
        .set({ session_hash: session.sessionHash, opened_at: session.at, session_expires_at: session.sessionExpiresAt })
        .where("link_hash", "=", linkHash)
        .where("opened_at", "is", null)
        .where("link_expires_at", ">", session.at)
        .returningAll()
        .executeTakeFirst();
      if (opened !== undefined) return { ok: true, session: toSession(opened) };
      const refused = await db
        .selectFrom("portal_sessions")
        .select(["opened_at", "return_url"])
        .where("link_hash", "=", linkHash)
        .executeTakeFirst();
      if (refused === undefined) return { ok: false, reason: "unknown" };
      return { ok: false, reason: refused.opened_at === null ? "expired" : "used", returnUrl: refused.return_url };
    },

    async findSession(sessionHash: string, at: string): Promise<PortalSessionRow | undefined> {
      const row = await db
        .selectFrom("portal_sessions")
        .selectAll()
        .where("session_hash", "=", sessionHash)
        .where("session_expires_at", ">", at)
        .executeTakeFirst();
      return row === undefined ? undefined : toSession(row);
    },

    async deleteSession(sessionHash: string): Promise<boolean> {
      const result = await db.deleteFrom("portal_sessions").where("session_hash", "=", sessionHash).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },

    async sweep(before: string): Promise<number> {
      const result = await db
        .deleteFrom("portal_sessions")
        .where((eb) =>
          eb.or([
            eb.and([eb("opened_at", "is", null), eb("link_expires_at", "<", before)]),
            eb("session_expires_at", "<", before),
          ]),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
