import type { KeyStatus } from "../lib/domain.js";
import type { OperatorRepo } from "../store/ports.js";
import { type KeyView, toKeyView } from "./key-view.js";

/** A key as the operator sees it: the owner's view (a hint, never the secret) and whose it is. */
export type OperatorKeyView = KeyView & { owner: string };

/** Keys across owners by status, for the operator, rendered through the owner's own view. */
export function createOperatorKeys({ operator }: { operator: Pick<OperatorRepo, "keysWithStatus"> }) {
  return async function keysWithStatus(statuses: readonly KeyStatus[], options: { afterId?: string; limit: number }): Promise<OperatorKeyView[]> {
    const rows = await operator.keysWithStatus(statuses, options);
    return rows.map((row) => ({ owner: row.owner, ...toKeyView(row) }));
  };
}

export type OperatorKeys = ReturnType<typeof createOperatorKeys>;
