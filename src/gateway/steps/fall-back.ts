import type { Actor, AuditLog } from "../../audit/audit-log.js";
import { scrubAndTrim, scrubSecretFragments, scrubSecrets } from "../../lib/scrub.js";
import type { KeyHealth } from "../../vault/key-health.js";
import type { CallContext, Credential } from "../call-context.js";
import type { ForwardResult } from "./forward.js";
import type { KeySelector } from "./select-key.js";

export type FallBackDeps = {
  keyHealth: Pick<KeyHealth, "markStatus">;
  auditLog: Pick<AuditLog, "record">;
  selector: Pick<KeySelector, "fallback">;
  /** A BYOK key the provider rejects mid-call: retry once on the platform key, or return the error. */
  fallbackOnInvalid: "platform" | "error";
};

/**
 * When the provider refused the owner's own key (revoked, or its account out of credit): marks the
 * key `invalid` / `no_credits` with the provider's (scrubbed) words, and returns the platform key
 * to retry the call with, where configured and available; otherwise `undefined` (the provider's
 * answer goes to the client).
 *
 * The status change is compare-and-set: however many calls are in flight on a revoked key, one
 * of them changes its status, writes the `key.invalidated` (or `key.no_credits`) event and the
 * `key.fell_back_to_platform` event, and bumps the key cache; the others just fall back.
 */
export async function fallBackFromRefusedKey(call: Readonly<CallContext>, result: ForwardResult, deps: FallBackDeps): Promise<Credential | undefined> {
  const credential = call.credential;
  if (credential?.source !== "byok" || !isRefusedOwnKey(result, credential)) return undefined;
  const { kind } = result.error;
  const { row } = credential;
  const status = kind === "invalid_key" ? "invalid" : "no_credits";
  const detail = statusDetail(result.error.message, credential.apiKey.reveal());
  const changed = await deps.keyHealth.markStatus(row, status, detail);
  if (changed !== undefined) call.request.log.info({ keyId: row.id, provider: call.adapter.id, status }, "provider refused the owner's key; key marked");
  if (deps.fallbackOnInvalid !== "platform") return undefined;
  const platform = deps.selector.fallback(call.adapter.id);
  if (platform === undefined) return undefined;
  if (changed !== undefined && call.principal !== undefined) {
    await deps.auditLog.record(row.owner, "key.fell_back_to_platform", actorOf(call), {
      keyId: row.id,
      detail: { provider: call.adapter.id, reason: kind },
    });
  }
  return platform;
}

/** Whether the provider refused the owner's own key itself (revoked, or its account out of credit). */
export function isRefusedOwnKey(
  result: ForwardResult,
  credential: Credential | undefined,
): result is Extract<ForwardResult, { kind: "error" }> & { error: { kind: "invalid_key" | "no_credits" } } {
  return result.kind === "error" && credential?.source === "byok" && (result.error.kind === "invalid_key" || result.error.kind === "no_credits");
}

/** The provider's message for the key's status detail, without any piece of the key. */
function statusDetail(message: string | undefined, apiKey: string): string {
  if (message === undefined || message.trim() === "") return "The provider rejected the key during a call.";
  return scrubAndTrim(scrubSecrets(scrubSecretFragments(message, [apiKey]), [apiKey]));
}

function actorOf(call: Readonly<CallContext>): Actor {
  const userAgent = call.request.headers["user-agent"];
  return { actor: call.principal?.sub ?? "system", ip: call.request.ip, userAgent: typeof userAgent === "string" ? userAgent : null };
}
