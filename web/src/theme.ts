import type { PortalTheme } from "keyport/client";

/**
 * Applies the platform's look: light or dark, its accent colour and product name. Colours go in
 * through the CSSOM (`style.setProperty`), which the page's Content-Security-Policy allows, unlike
 * inline style attributes. The server only accepts `#rrggbb` accents.
 */
export function applyTheme(theme: PortalTheme): void {
  const root = document.documentElement;
  if (theme.mode !== undefined) root.dataset.theme = theme.mode;
  if (theme.accentColor !== undefined && /^#[0-9a-fA-F]{6}$/.test(theme.accentColor)) {
    root.style.setProperty("--accent", theme.accentColor);
    root.style.setProperty("--accent-text", readableOn(theme.accentColor));
  }
  document.title = theme.productName === undefined ? "API keys settings" : `API keys settings · ${theme.productName}`;
}

/** Black or white, whichever reads better on `hex` (WCAG relative luminance). */
function readableOn(hex: string): string {
  const channel = (offset: number) => {
    const value = Number.parseInt(hex.slice(offset, offset + 2), 16) / 255;
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return luminance > 0.179 ? "#000000" : "#ffffff";
}
