import type { AuditEvent } from "keyport/client";
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { formatDateTime, PROVIDER_NAMES } from "../ui/format.js";
import { ErrorNotice, Loading } from "../ui/status.js";

const PAGE_SIZE = 25;

const EVENT_NAMES: Record<string, string> = {
  "key.created": "Key added",
  "key.activated": "Key made active",
  "key.deactivated": "Key made inactive",
  "key.updated": "Key changed",
  "key.rotated": "Key replaced",
  "key.tested": "Key tested",
  "key.deleted": "Key deleted",
  "key.rejected": "Key refused",
  "key.invalidated": "Key rejected by the provider",
  "key.no_credits": "Key out of credits",
  "key.undecryptable": "Key needs to be re-entered",
  "key.fell_back_to_platform": "Platform key used instead",
  "budget.threshold_reached": "Spending alert reached",
  "budget.exceeded": "Budget reached",
};

const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/** Which key an event is about, in words: "Production (OpenAI, ****...abc1)". */
function subjectOf(event: AuditEvent): string | undefined {
  const { detail } = event;
  const provider = text(detail.provider);
  const providerName = provider === "openai" || provider === "anthropic" ? PROVIDER_NAMES[provider] : provider;
  const label = text(detail.label);
  const hint = text(detail.keyHint);
  const facts = [providerName, hint].filter((fact) => fact !== undefined).join(", ");
  if (label !== undefined) return facts === "" ? label : `${label} (${facts})`;
  return facts === "" ? undefined : facts;
}

/** The rest of an event's facts (never a secret: the server stores none). */
function factsOf(event: AuditEvent): string {
  const shown = new Set(["provider", "label", "keyHint"]);
  return Object.entries(event.detail)
    .filter(([name, value]) => !shown.has(name) && value !== null && value !== undefined)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join(" · ");
}

type State = { events: AuditEvent[]; nextCursor: string | null; loading: boolean; error: unknown; loaded: boolean };

/** The audit trail, newest first, a page at a time. */
export function ActivityPanel() {
  const [state, setState] = useState<State>({ events: [], nextCursor: null, loading: true, error: undefined, loaded: false });

  async function load(cursor: string | undefined) {
    setState((previous) => ({ ...previous, loading: true, error: undefined }));
    try {
      const page = await client.audit.list({ limit: PAGE_SIZE, ...(cursor === undefined ? {} : { cursor }) });
      setState((previous) => ({
        events: cursor === undefined ? page.events : [...previous.events, ...page.events],
        nextCursor: page.nextCursor,
        loading: false,
        error: undefined,
        loaded: true,
      }));
    } catch (error) {
      setState((previous) => ({ ...previous, loading: false, error }));
    }
  }

  useEffect(() => {
    void load(undefined);
  }, []);

  return (
    <div class="panel-body" aria-busy={state.loading}>
      <section class="card" aria-labelledby="activity-heading">
        <div class="card-head">
          <h2 id="activity-heading">Activity</h2>
          <button type="button" class="button-secondary" disabled={state.loading} onClick={() => void load(undefined)}>
            Refresh
          </button>
        </div>
        {state.loaded && state.events.length === 0 ? <p class="empty">Nothing has happened yet.</p> : null}
        {state.events.length === 0 ? null : (
          <ol class="events">
            {state.events.map((event) => {
              const subject = subjectOf(event);
              const facts = factsOf(event);
              return (
                <li key={event.id} class="event">
                  <p class="event-title">
                    <strong>{EVENT_NAMES[event.type] ?? event.type}</strong>
                    {subject === undefined ? null : <span> · {subject}</span>}
                  </p>
                  <p class="event-meta">
                    <time dateTime={event.createdAt}>{formatDateTime(event.createdAt)}</time> · by {event.actor}
                  </p>
                  {facts === "" ? null : <p class="event-facts">{facts}</p>}
                </li>
              );
            })}
          </ol>
        )}
        {state.loading ? <Loading>Loading activity…</Loading> : null}
        {state.error === undefined ? null : (
          <ErrorNotice error={state.error} what="Activity could not be loaded" onRetry={() => void load(state.loaded ? (state.nextCursor ?? undefined) : undefined)} />
        )}
        {state.nextCursor === null || state.loading ? null : (
          <button type="button" class="button-secondary" onClick={() => void load(state.nextCursor ?? undefined)}>
            Show older activity
          </button>
        )}
      </section>
    </div>
  );
}
