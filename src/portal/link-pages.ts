import type { PortalOpenRefusal } from "../store/ports.js";

const MESSAGES: Record<PortalOpenRefusal["reason"], { title: string; text: string }> = {
  used: {
    title: "This link was already used",
    text: "A Settings link opens once. Open Settings again from the app to get a new one.",
  },
  expired: {
    title: "This link has expired",
    text: "A Settings link works for a few minutes. Open Settings again from the app to get a new one.",
  },
  unknown: {
    title: "This link is not valid",
    text: "Open Settings again from the app to get a new link.",
  },
};

/** The page a refused portal link shows: what happened, and the way back. Server-rendered, no script. */
export function linkRefusedPage(refusal: PortalOpenRefusal, stylesheetHref: string | undefined): string {
  const message = MESSAGES[refusal.reason];
  const returnUrl = refusal.reason === "unknown" ? null : refusal.returnUrl;
  return simplePage(
    message.title,
    `<p>${escapeHtml(message.text)}</p>${returnUrl === null ? "" : `<p><a class="button" href="${escapeHtml(returnUrl)}">Back to the app</a></p>`}`,
    stylesheetHref,
  );
}

/** Shown when the page was not built (a checkout without `npm run build`). */
export function pageNotBuiltPage(): string {
  return simplePage("The Settings page is not built", "<p>Run <code>npm run build</code>, then restart Keyport.</p>", undefined);
}

function simplePage(title: string, body: string, stylesheetHref: string | undefined): string {
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    stylesheetHref === undefined ? "" : `<link rel="stylesheet" href="${escapeHtml(stylesheetHref)}">`,
    "</head>",
    '<body class="notice-page">',
    `<main class="notice"><h1>${escapeHtml(title)}</h1>${body}</main>`,
    "</body>",
    "</html>",
  ].join("\n");
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
