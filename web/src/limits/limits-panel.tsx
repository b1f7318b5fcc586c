import { KeyportError } from "keyport/client";
import { useEffect, useId, useState } from "preact/hooks";
import { messageOf } from "../client.js";
import { ErrorNotice, Loading } from "../ui/status.js";
import { useLoad } from "../ui/use-load.js";
import { getLimits, LIMIT_FIELDS, type Limits, type LimitsChange, putLimits, rotateWebhookSecret } from "./limits-api.js";
import { SpendCard } from "./spend-card.js";

type Field = (typeof LIMIT_FIELDS)[number];
type Draft = Record<Field, string>;

const LABELS: Record<Field, string> = {
  monthlyBudgetUsd: "Monthly budget (USD)",
  notifyThresholdUsd: "Alert threshold (USD)",
  notifyEmail: "Notification email",
  webhookUrl: "Webhook URL",
};

const HINTS: Record<Field, string> = {
  monthlyBudgetUsd: "Calls are refused once this month's spend reaches it. Empty: no budget.",
  notifyThresholdUsd: "You are told once a month when spend passes it. Empty: no alert.",
  notifyEmail: "Where alerts and key problems are emailed. Empty: no email.",
  webhookUrl: "An https URL that receives signed events. Empty: no webhook.",
};

const INPUT_TYPES: Record<Field, string> = { monthlyBudgetUsd: "text", notifyThresholdUsd: "text", notifyEmail: "email", webhookUrl: "url" };

function draftOf(limits: Limits): Draft {
  const text = (value: number | string | null) => (value === null ? "" : String(value));
  return {
    monthlyBudgetUsd: text(limits.monthlyBudgetUsd),
    notifyThresholdUsd: text(limits.notifyThresholdUsd),
    notifyEmail: text(limits.notifyEmail),
    webhookUrl: text(limits.webhookUrl),
  };
}

/** Which field an API validation message names (the API names the field, never echoes values). */
function fieldOf(message: string): Field | undefined {
  return LIMIT_FIELDS.find((field) => message.includes(field));
}

/** Budget, alert threshold, email and webhook; the API's validation message appears next to its field. */
export function LimitsPanel() {
  const [limits, reload] = useLoad(getLimits, []);
  const [draft, setDraft] = useState<Draft | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});
  const [formError, setFormError] = useState<string | undefined>(undefined);
  const [saved, setSaved] = useState("");
  const [showSecret, setShowSecret] = useState(false);
  const [rotating, setRotating] = useState(false);
  const baseId = useId();

  useEffect(() => {
    if (limits.data !== undefined && draft === undefined) setDraft(draftOf(limits.data));
  }, [limits.data, draft]);

  if (limits.data === undefined || draft === undefined) {
    return limits.error === undefined ? <Loading>Loading your limits…</Loading> : <ErrorNotice error={limits.error} what="Limits could not be loaded" onRetry={() => void reload()} />;
  }

  function toChange(current: Draft): { ok: true; change: LimitsChange } | { ok: false; errors: Partial<Record<Field, string>> } {
    const errors: Partial<Record<Field, string>> = {};
    const money = (field: Field): number | null => {
      const value = current[field].trim();
      if (value === "") return null;
      const amount = Number(value);
      if (!Number.isFinite(amount) || amount < 0) errors[field] = "Enter an amount in US dollars, such as 25 or 12.50.";
      return amount;
    };
    const text = (field: Field) => (current[field].trim() === "" ? null : current[field].trim());
    const change: LimitsChange = {
      monthlyBudgetUsd: money("monthlyBudgetUsd"),
      notifyThresholdUsd: money("notifyThresholdUsd"),
      notifyEmail: text("notifyEmail"),
      webhookUrl: text("webhookUrl"),
    };
    return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, change };
  }

  async function submit(event: Event) {
    event.preventDefault();
    if (draft === undefined) return;
    const checked = toChange(draft);
    setSaved("");
    setFormError(undefined);
    if (!checked.ok) {
      setFieldErrors(checked.errors);
      return;
    }
    setFieldErrors({});
    setBusy(true);
    try {
      const stored = await putLimits(checked.change);
      setDraft(draftOf(stored));
      setSaved("Limits saved.");
      void reload();
    } catch (error) {
      // Everything typed stays; the message goes next to the field it names.
      const field = error instanceof KeyportError && error.status === 400 ? fieldOf(error.message) : undefined;
      if (field === undefined) setFormError(messageOf(error));
      else setFieldErrors({ [field]: messageOf(error) });
    } finally {
      setBusy(false);
    }
  }

  async function rotate() {
    setRotating(true);
    setSaved("");
    setFormError(undefined);
    try {
      await rotateWebhookSecret();
      await reload();
      setShowSecret(true);
      setSaved("New signing secret made. The old one keeps signing webhooks next to it for 24 hours.");
    } catch (error) {
      setFormError(messageOf(error));
    } finally {
      setRotating(false);
    }
  }

  const secret = limits.data.webhookSecret;
  return (
    <div class="panel-body">
      <SpendCard limits={limits.data} />
      <section class="card" aria-labelledby="limits-heading">
        <h2 id="limits-heading">Limits and notifications</h2>
        <form onSubmit={(event) => void submit(event)} noValidate>
          {LIMIT_FIELDS.map((field) => {
            const id = `${baseId}-${field}`;
            const error = fieldErrors[field];
            return (
              <div key={field} class="field">
                <label for={id}>{LABELS[field]}</label>
                <input
                  id={id}
                  value={draft[field]}
                  // Preact types `type` per input kind; one element serves all four here.
                  type={INPUT_TYPES[field] as "text"}
                  inputMode={field.endsWith("Usd") ? "decimal" : undefined}
                  aria-describedby={`${id}-hint${error === undefined ? "" : ` ${id}-error`}`}
                  aria-invalid={error !== undefined}
                  onInput={(event) => setDraft({ ...draft, [field]: event.currentTarget.value })}
                />
                <p id={`${id}-hint`} class="hint">
                  {HINTS[field]}
                </p>
                {error === undefined ? null : (
                  <p id={`${id}-error`} class="field-error" role="alert">
                    {error}
                  </p>
                )}
              </div>
            );
          })}
          {secret === undefined || secret === null ? null : (
            <div class="field">
              <label for={`${baseId}-secret`}>Webhook signing secret</label>
              <div class="inline">
                <input id={`${baseId}-secret`} type={(showSecret ? "text" : "password") as "text"} value={secret} readOnly autocomplete="off" />
                <button type="button" class="button-secondary" aria-pressed={showSecret} onClick={() => setShowSecret(!showSecret)}>
                  {showSecret ? "Hide" : "Show"}
                </button>
                <button type="button" class="button-secondary" disabled={rotating} onClick={() => void rotate()}>
                  {rotating ? "Making a new secret…" : "New secret"}
                </button>
              </div>
              <p class="hint">Check each webhook's signature with it (Standard Webhooks).</p>
            </div>
          )}
          {formError === undefined ? null : (
            <p class="field-error" role="alert">
              {formError}
            </p>
          )}
          <p role="status" class="announcement">
            {saved}
          </p>
          <button type="submit" class="button-primary" disabled={busy}>
            {busy ? "Saving…" : "Save limits"}
          </button>
        </form>
      </section>
    </div>
  );
}
