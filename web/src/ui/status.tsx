import type { ComponentChildren } from "preact";
import { messageOf } from "../client.js";

/** A loading line, announced politely. */
export function Loading({ children }: { children: ComponentChildren }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {children}
    </p>
  );
}

/** A failed request: what happened and a way to try again. */
export function ErrorNotice({ error, onRetry, what }: { error: unknown; onRetry?: () => void; what?: string }) {
  return (
    <div class="notice notice-error" role="alert">
      <p>
        {what === undefined ? "" : `${what}: `}
        {messageOf(error)}
      </p>
      {onRetry === undefined ? null : (
        <button type="button" class="button-secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
