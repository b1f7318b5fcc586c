import type { ApiKey, Plan, Provider } from "keyport/client";
import { useId, useState } from "preact/hooks";
import { client, messageOf } from "../client.js";
import { PROVIDER_NAMES } from "../ui/format.js";
import { formatHint, trimKey } from "./key-format.js";

/**
 * Adding a key: provider, the pasted key (checked as it is typed, trimmed, never shown again once
 * saved) and a label. A failed save keeps everything typed; a retry of the same input reuses the
 * idempotency key, so a save that did reach the server is not stored twice.
 */
export function AddKeyForm({ plan, onSaved }: { plan: Plan; onSaved: (key: ApiKey) => void }) {
  const [provider, setProvider] = useState<Provider>("openai");
  const [secret, setSecret] = useState("");
  const [label, setLabel] = useState("");
  const [activate, setActivate] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [attempt, setAttempt] = useState(() => crypto.randomUUID());
  const ids = { provider: useId(), secret: useId(), hint: useId(), label: useId(), activate: useId(), error: useId() };
  const hint = formatHint(provider, secret);

  function edited<T>(set: (value: T) => void) {
    return (value: T) => {
      set(value);
      // Different input is a different request: a new idempotency key.
      setAttempt(crypto.randomUUID());
    };
  }

  async function submit(event: Event) {
    event.preventDefault();
    if (hint.kind !== "ok") {
      setError(hint.kind === "empty" ? "Paste the API key first." : hint.text);
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const key = await client.apiKeys.create(
        { provider, apiKey: trimKey(secret), ...(label.trim() === "" ? {} : { label: label.trim() }), ...(activate ? { activate: true } : {}) },
        { idempotencyKey: attempt },
      );
      // Saved: the field forgets the key at once; the page only ever shows its hint from now on.
      setSecret("");
      setLabel("");
      setActivate(false);
      setAttempt(crypto.randomUUID());
      onSaved(key);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="add-key-heading">
      <h2 id="add-key-heading">Add a key</h2>
      {plan.byokAllowed ? null : (
        <p class="note">Your plan uses the platform's keys. A key you add is kept, and used once your plan allows your own keys.</p>
      )}
      <form onSubmit={(event) => void submit(event)} autocomplete="off" noValidate>
        <div class="field">
          <label for={ids.provider}>Provider</label>
          <select id={ids.provider} value={provider} onChange={(event) => edited(setProvider)(event.currentTarget.value as Provider)}>
            {(Object.keys(PROVIDER_NAMES) as Provider[]).map((id) => (
              <option key={id} value={id}>
                {PROVIDER_NAMES[id]}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for={ids.secret}>API key</label>
          <input
            id={ids.secret}
            type="password"
            value={secret}
            autocomplete="off"
            spellcheck={false}
            aria-describedby={`${ids.hint}${error === undefined ? "" : ` ${ids.error}`}`}
            aria-invalid={hint.kind === "problem" || error !== undefined}
            onInput={(event) => edited(setSecret)(event.currentTarget.value)}
          />
          <p id={ids.hint} class={`hint hint-${hint.kind}`} aria-live="polite">
            {hint.kind === "empty" ? `Paste your ${PROVIDER_NAMES[provider]} API key. It is stored encrypted and never shown again.` : hint.text}
          </p>
        </div>
        <div class="field">
          <label for={ids.label}>Label (optional)</label>
          <input id={ids.label} value={label} maxLength={100} placeholder="e.g. Production" onInput={(event) => edited(setLabel)(event.currentTarget.value)} />
        </div>
        <div class="field field-check">
          <input id={ids.activate} type="checkbox" checked={activate} onChange={(event) => setActivate(event.currentTarget.checked)} />
          <label for={ids.activate}>Make it the active {PROVIDER_NAMES[provider]} key</label>
        </div>
        {error === undefined ? null : (
          <p id={ids.error} class="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="button-primary" disabled={busy}>
          {busy ? "Checking the key…" : "Save key"}
        </button>
      </form>
    </section>
  );
}
