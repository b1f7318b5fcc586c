import { sql } from "kysely";
import type { Kysely } from "kysely";
import type { Store } from "../ports.js";
import { createAuditRepo } from "./audit-repo.js";
import { createBudgetRepo, createOwnerLimitsRepo } from "./budget-repo.js";
import { createDataKeyRepo } from "./data-key-repo.js";
import type { DialectHooks } from "./dialect-hooks.js";
import { createIdempotencyRepo } from "./idempotency-repo.js";
import { createKeyRepo } from "./key-repo.js";
import { createMasterKeyRepo } from "./master-key-repo.js";
import { createNotificationRepo } from "./notification-repo.js";
import { createOperatorRepo } from "./operator-repo.js";
import { createPortalSessionRepo } from "./portal-session-repo.js";
import type { Database } from "./schema.js";
import { createUsageRepo } from "./usage-repo.js";
import { createWebhookSecretRepo } from "./webhook-secret-repo.js";

/**
 * Assembles a `Store` over a migrated Kysely instance. The store owns `db`: `close()` destroys
 * it (once; later calls resolve without doing anything).
 */
export function createKyselyStore(db: Kysely<Database>, hooks: DialectHooks): Store {
  let closing: Promise<void> | undefined;
  return {
    dialect: hooks.name,
    keys: createKeyRepo(db, hooks),
    dataKeys: createDataKeyRepo(db),
    masterKeys: createMasterKeyRepo(db),
    audit: createAuditRepo(db),
    idempotency: createIdempotencyRepo(db),
    usage: createUsageRepo(db, hooks.usageBatchWriter),
    notifications: createNotificationRepo(db),
    webhookSecrets: createWebhookSecretRepo(db),
    portalSessions: createPortalSessionRepo(db),
    ownerLimits: createOwnerLimitsRepo(db),
    budgets: createBudgetRepo(db),
    operator: createOperatorRepo(db),
    async ping(): Promise<void> {
      await sql`select 1`.execute(db);
    },
    close(): Promise<void> {
      closing ??= db.destroy();
      return closing;
    },
  };
}
