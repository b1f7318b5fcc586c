import type { ApiKey, ApiKeyTestResult } from "keyport/client";
import { useId, useState } from "preact/hooks";
import { client, messageOf } from "../client.js";
import { ConfirmDialog } from "../ui/confirm-dialog.js";
import { Icon } from "../ui/icon.js";
import { formatAgo, formatCount, formatDateTime, formatUsd } from "../ui/format.js";
import { StatusBadge, testResultText } from "./key-status.js";
import { trimKey } from "./key-format.js";

type Mode = "view" | "rename" | "replace" | "delete";
type Busy = "test" | "activate" | "rename" | "replace" | "delete" | null;

export type KeyCardProps = {
  apiKey: ApiKey;
  /** After a change: reload the list and tell the user what happened. */
  onChanged: (announcement: string) => void;
};

/** One stored key: what it is, how it is doing, and what can be done with it. */
export function KeyCard({ apiKey, onChanged }: KeyCardProps) {
  const [mode, setMode] = useState<Mode>("view");
  const [busy, setBusy] = useState<Busy>(null);
  const [error, setError] = useState<string | undefined>(undefined);
  const [testResult, setTestResult] = useState<ApiKeyTestResult | undefined>(undefined);
  const [newLabel, setNewLabel] = useState(apiKey.label);
  const [newSecret, setNewSecret] = useState("");
  const headingId = useId();
  const renameId = useId();
  const replaceId = useId();
  const name = apiKey.label;

  /** Runs an action; a failure is shown next to the key and leaves typed input as it was. */
  async function act(kind: Exclude<Busy, null>, action: () => Promise<string>) {
    setBusy(kind);
    setError(undefined);
    try {
      const announcement = await action();
      onChanged(announcement);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(null);
    }
  }

  const test = () =>
    act("test", async () => {
      const outcome = await client.apiKeys.test(apiKey.id);
      setTestResult(outcome);
      return `Tested ${name}: ${testResultText(outcome).short}`;
    });

  const activate = () =>
    act("activate", async () => {
      await client.apiKeys.update(apiKey.id, { isActive: true });
      return `${name} is now the active key`;
    });

  const rename = (event: Event) => {
    event.preventDefault();
    void act("rename", async () => {
      const updated = await client.apiKeys.update(apiKey.id, { label: newLabel.trim() });
      setMode("view");
      return `Renamed ${name} to ${updated.label}`;
    });
  };

  const replace = (event: Event) => {
    event.preventDefault();
    void act("replace", async () => {
      const updated = await client.apiKeys.replaceSecret(apiKey.id, trimKey(newSecret));
      // The new secret is stored; it never comes back, and the field forgets it.
      setNewSecret("");
      setMode("view");
      setTestResult(undefined);
      return `Replaced the key of ${updated.label}: now ${updated.keyHint}, ${updated.status}`;
    });
  };

  const remove = () =>
    act("delete", async () => {
      await client.apiKeys.delete(apiKey.id);
      setMode("view");
      return `Deleted ${name} (${apiKey.keyHint})`;
    });

  const checked = apiKey.lastTestedAt ?? apiKey.statusChangedAt;
  const result = testResult === undefined ? undefined : testResultText(testResult);

  return (
    <li class={`key-card${apiKey.isActive ? " key-active" : ""}`} aria-labelledby={headingId}>
      <div class="key-head">
        <h4 id={headingId}>{name}</h4>
        {apiKey.isActive ? <span class="badge badge-active">Active</span> : null}
        <StatusBadge status={apiKey.status} />
      </div>
      <p class="key-meta">
        <code>{apiKey.keyHint}</code>
        <span>
          {apiKey.lastTestedAt === null ? "Status since" : "Checked"} <time dateTime={checked} title={formatDateTime(checked)}>{formatAgo(checked)}</time>
        </span>
      </p>
      {apiKey.statusDetail === null || apiKey.status === "valid" ? null : <p class="key-reason">{apiKey.statusDetail}</p>}
      <dl class="key-stats">
        <div>
          <dt>Requests</dt>
          <dd>{formatCount(apiKey.totalRequests)}</dd>
        </div>
        <div>
          <dt>Tokens</dt>
          <dd>{formatCount(apiKey.totalTokens)}</dd>
        </div>
        <div>
          <dt>Estimated cost</dt>
          <dd>{formatUsd(apiKey.estimatedCostUsd)}</dd>
        </div>
      </dl>
      <div class="actions">
        <button type="button" aria-label={`Test ${name}`} disabled={busy !== null} onClick={() => void test()}>
          {busy === "test" ? "Testing…" : "Test"}
        </button>
        {apiKey.isActive ? null : (
          <button type="button" aria-label={`Make ${name} active`} disabled={busy !== null} onClick={() => void activate()}>
            {busy === "activate" ? "Activating…" : "Make active"}
          </button>
        )}
        <button type="button" class="button-secondary" aria-label={`Rename ${name}`} aria-expanded={mode === "rename"} disabled={busy !== null} onClick={() => setMode(mode === "rename" ? "view" : "rename")}>
          Rename
        </button>
        <button type="button" class="button-secondary" aria-label={`Replace ${name}`} aria-expanded={mode === "replace"} disabled={busy !== null} onClick={() => setMode(mode === "replace" ? "view" : "replace")}>
          Replace
        </button>
        <button type="button" class="button-danger-outline" aria-label={`Delete ${name}`} disabled={busy !== null} onClick={() => setMode("delete")}>
          Delete
        </button>
      </div>
      <div role="status" class="key-result">
        {result === undefined ? null : (
          <p class={`result result-${result.tone}`}>
            <Icon name={result.icon} />
            <span>Test result: {result.text}</span>
          </p>
        )}
      </div>
      {error === undefined ? null : (
        <p class="field-error" role="alert">
          {error}
        </p>
      )}
      {mode === "rename" ? (
        <form class="inline-form" onSubmit={rename}>
          <label for={renameId}>New name for {name}</label>
          <input id={renameId} value={newLabel} maxLength={100} required onInput={(event) => setNewLabel(event.currentTarget.value)} />
          <div class="actions">
            <button type="submit" disabled={busy !== null || newLabel.trim() === ""}>
              {busy === "rename" ? "Saving…" : "Save name"}
            </button>
            <button type="button" class="button-secondary" onClick={() => setMode("view")}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      {mode === "replace" ? (
        <form class="inline-form" onSubmit={replace} autocomplete="off">
          <label for={replaceId}>New API key for {name}</label>
          <input
            id={replaceId}
            type="password"
            value={newSecret}
            autocomplete="off"
            spellcheck={false}
            required
            onInput={(event) => setNewSecret(event.currentTarget.value)}
          />
          <p class="hint">The key is checked with the provider and replaces the old one in place.</p>
          <div class="actions">
            <button type="submit" disabled={busy !== null || trimKey(newSecret) === ""}>
              {busy === "replace" ? "Checking…" : "Replace key"}
            </button>
            <button type="button" class="button-secondary" onClick={() => setMode("view")}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      <ConfirmDialog
        open={mode === "delete"}
        title={`Delete ${name}?`}
        confirmLabel="Delete key"
        busy={busy === "delete"}
        onConfirm={() => void remove()}
        onCancel={() => setMode("view")}
      >
        <p>
          The key “{name}” ({apiKey.keyHint}) is deleted for good. {apiKey.isActive ? "Calls stop using it at once." : ""} Its activity stays in your
          history.
        </p>
        {error === undefined ? null : (
          <p class="field-error" role="alert">
            {error}
          </p>
        )}
      </ConfirmDialog>
    </li>
  );
}
