import type { CurrentPortalSession } from "keyport/client";
import { KeyportError } from "keyport/client";
import { useEffect, useState } from "preact/hooks";
import { ActivityPanel } from "./activity/activity-panel.js";
import { client, setCsrfToken } from "./client.js";
import { KeysPanel } from "./keys/keys-panel.js";
import { LimitsPanel } from "./limits/limits-panel.js";
import { applyTheme } from "./theme.js";
import { ErrorNotice, Loading } from "./ui/status.js";
import { type Tab, Tabs } from "./ui/tabs.js";
import { UsagePanel } from "./usage/usage-panel.js";

type SessionState = { kind: "loading" } | { kind: "ready"; session: CurrentPortalSession } | { kind: "ended" } | { kind: "error"; error: unknown };

/** The Settings page: the portal session (who, which plan, the platform's look), then the panels. */
export function App() {
  const [state, setState] = useState<SessionState>({ kind: "loading" });

  async function loadSession() {
    setState({ kind: "loading" });
    try {
      const session = await client.portalSessions.current();
      setCsrfToken(session.csrfToken);
      applyTheme(session.theme);
      setState({ kind: "ready", session });
    } catch (error) {
      const ended = error instanceof KeyportError && (error.status === 401 || error.status === 404);
      setState(ended ? { kind: "ended" } : { kind: "error", error });
    }
  }

  useEffect(() => {
    void loadSession();
  }, []);

  switch (state.kind) {
    case "loading":
      return (
        <main class="page">
          <Loading>Loading your settings…</Loading>
        </main>
      );
    case "ended":
      return (
        <main class="page notice">
          <h1>Your Settings session has ended</h1>
          <p>For your security, Settings opens from a link that works once. Open Settings again from the app.</p>
        </main>
      );
    case "error":
      return (
        <main class="page">
          <h1>Settings</h1>
          <ErrorNotice error={state.error} what="Settings could not be loaded" onRetry={() => void loadSession()} />
        </main>
      );
    case "ready":
      return <SettingsPage session={state.session} onEnded={() => setState({ kind: "ended" })} />;
  }
}

function SettingsPage({ session, onEnded }: { session: CurrentPortalSession; onEnded: () => void }) {
  const productName = session.theme.productName;
  const tabs: Tab[] = [
    { id: "keys", label: "API keys", render: () => <KeysPanel /> },
    { id: "usage", label: "Usage", render: () => <UsagePanel /> },
    { id: "limits", label: "Limits", render: () => <LimitsPanel /> },
    { id: "activity", label: "Activity", render: () => <ActivityPanel /> },
  ];

  async function signOut() {
    try {
      await client.portalSessions.endCurrent();
    } finally {
      onEnded();
    }
  }

  return (
    <div class="page">
      <header class="page-header">
        <div>
          <p class="product">{productName ?? "Your account"}</p>
          <h1>API keys and usage</h1>
        </div>
        <nav aria-label="Account" class="header-actions">
          {session.returnUrl === null ? null : (
            <a class="button-secondary" href={session.returnUrl}>
              Back to {productName ?? "the app"}
            </a>
          )}
          <button type="button" class="button-secondary" onClick={() => void signOut()}>
            Sign out
          </button>
        </nav>
      </header>
      <main>
        <Tabs tabs={tabs} label="Settings sections" />
      </main>
    </div>
  );
}
