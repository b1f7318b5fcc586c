import type { ComponentChildren } from "preact";
import { useRef, useState } from "preact/hooks";

export type Tab = { id: string; label: string; render: () => ComponentChildren };

/**
 * WAI-ARIA tabs: arrow keys, Home and End move between tabs (which also selects them), Tab moves
 * into the panel. A panel stays mounted once opened, so what was typed in it survives switching
 * tabs. The selected tab is kept in the URL's fragment (#usage), so it can be linked and reloaded.
 */
export function Tabs({ tabs, label }: { tabs: readonly Tab[]; label: string }) {
  const initial = tabs.find((tab) => `#${tab.id}` === window.location.hash)?.id ?? tabs[0]?.id ?? "";
  const [selected, setSelected] = useState(initial);
  const [opened, setOpened] = useState<ReadonlySet<string>>(new Set([initial]));
  const buttons = useRef<Record<string, HTMLButtonElement | null>>({});

  function select(id: string, focus: boolean) {
    setSelected(id);
    setOpened((previous) => new Set([...previous, id]));
    window.history.replaceState(null, "", `#${id}`);
    if (focus) buttons.current[id]?.focus();
  }

  function onKeyDown(event: KeyboardEvent, index: number) {
    const moves: Record<string, number> = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
    const target = moves[event.key];
    if (target === undefined) return;
    event.preventDefault();
    const next = tabs[(target + tabs.length) % tabs.length];
    if (next !== undefined) select(next.id, true);
  }

  return (
    <div class="tabs">
      <div role="tablist" aria-label={label} class="tablist">
        {tabs.map((tab, index) => (
          <button
            key={tab.id}
            ref={(element) => {
              buttons.current[tab.id] = element;
            }}
            type="button"
            role="tab"
            id={`tab-${tab.id}`}
            aria-controls={`panel-${tab.id}`}
            aria-selected={tab.id === selected}
            tabIndex={tab.id === selected ? 0 : -1}
            onClick={() => select(tab.id, false)}
            onKeyDown={(event) => onKeyDown(event, index)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      {tabs.map((tab) => (
        <div key={tab.id} role="tabpanel" id={`panel-${tab.id}`} aria-labelledby={`tab-${tab.id}`} hidden={tab.id !== selected} class="panel">
          {opened.has(tab.id) ? tab.render() : null}
        </div>
      ))}
    </div>
  );
}
