import type { ApiKey, Provider } from "keyport/client";
import { useState } from "preact/hooks";
import { client } from "../client.js";
import { PROVIDER_NAMES } from "../ui/format.js";
import { ErrorNotice, Loading } from "../ui/status.js";
import { useLoad } from "../ui/use-load.js";
import { AddKeyForm } from "./add-key-form.js";
import { KeyCard } from "./key-card.js";
import { statusText } from "./key-status.js";
import { WhichKeyPays } from "./which-key-pays.js";

/** The API keys panel: which key pays, the keys per provider, and the form to add one. */
export function KeysPanel() {
  const [listing, reload] = useLoad(() => client.apiKeys.list(), []);
  const [announcement, setAnnouncement] = useState("");

  function changed(message: string) {
    setAnnouncement(message);
    void reload();
  }

  function saved(key: ApiKey) {
    changed(`Saved ${key.label} (${key.keyHint}): ${statusText(key.status)}`);
  }

  if (listing.data === undefined) {
    return listing.error === undefined ? <Loading>Loading your keys…</Loading> : <ErrorNotice error={listing.error} what="Your keys could not be loaded" onRetry={() => void reload()} />;
  }
  const { keys, plan } = listing.data;
  return (
    <div class="panel-body" aria-busy={listing.loading}>
      <p class="announcement" role="status">
        {announcement}
      </p>
      {listing.error === undefined ? null : <ErrorNotice error={listing.error} what="The list could not be refreshed" onRetry={() => void reload()} />}
      <WhichKeyPays listing={listing.data} />
      <section class="card" aria-labelledby="your-keys">
        <h2 id="your-keys">Your keys</h2>
        {(Object.keys(PROVIDER_NAMES) as Provider[]).map((provider) => {
          // The active key first, then the newest (the API lists newest first).
          const own = keys.filter((key) => key.provider === provider).sort((a, b) => Number(b.isActive) - Number(a.isActive));
          return (
            <section key={provider} class="provider-keys" aria-labelledby={`keys-${provider}`}>
              <h3 id={`keys-${provider}`}>{PROVIDER_NAMES[provider]}</h3>
              {own.length === 0 ? (
                <p class="empty">No {PROVIDER_NAMES[provider]} keys yet.</p>
              ) : (
                <ul class="key-list">
                  {own.map((key) => (
                    <KeyCard key={key.id} apiKey={key} onChanged={changed} />
                  ))}
                </ul>
              )}
            </section>
          );
        })}
      </section>
      <AddKeyForm plan={plan} onSaved={saved} />
    </div>
  );
}
