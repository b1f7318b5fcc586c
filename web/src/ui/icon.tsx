/**
 * Small status icons drawn as SVG, so they look the same on every system (emoji depend on the
 * fonts installed). Always decorative: the text next to them says the same.
 */
export type IconName = "valid" | "invalid" | "warning" | "unknown" | "reenter" | "wait" | "offline";

const PATHS: Record<IconName, string> = {
  // A tick in a circle.
  valid: "M8 0a8 8 0 1 1 0 16A8 8 0 0 1 8 0Zm3.6 5.1-4.5 4.7-2.2-2.2-1.1 1.1 3.3 3.3 5.6-5.8-1.1-1.1Z",
  // A cross in a circle.
  invalid: "M8 0a8 8 0 1 1 0 16A8 8 0 0 1 8 0Zm2.8 4.1L8 6.9 5.2 4.1 4.1 5.2 6.9 8l-2.8 2.8 1.1 1.1L8 9.1l2.8 2.8 1.1-1.1L9.1 8l2.8-2.8-1.1-1.1Z",
  // An exclamation mark in a triangle.
  warning: "M8 .5 16 15H0L8 .5Zm-.8 5v5h1.6v-5H7.2Zm0 6.2v1.6h1.6v-1.6H7.2Z",
  // A question mark in a circle.
  unknown:
    "M8 0a8 8 0 1 1 0 16A8 8 0 0 1 8 0Zm0 3.5a2.7 2.7 0 0 0-2.7 2.7h1.6c0-.6.5-1.1 1.1-1.1s1.1.5 1.1 1.1c0 1.1-1.9 1.2-1.9 3.3h1.6c0-1.4 1.9-1.6 1.9-3.3A2.7 2.7 0 0 0 8 3.5Zm-.8 7.1v1.6h1.6v-1.6H7.2Z",
  // Two arrows in a circle: enter it again.
  reenter: "M8 1a7 7 0 0 1 6.9 6h-1.6A5.4 5.4 0 0 0 3.7 4.4L5.5 6H1V1.5l1.6 1.6A7 7 0 0 1 8 1Zm6.9 8v4.5l-1.6-1.6A7 7 0 0 1 1.1 9h1.6a5.4 5.4 0 0 0 9.6 2.6L10.5 10H15Z",
  // An hourglass.
  wait: "M3 0h10v1.6h-1v2.2L9.2 8l2.8 4.2v2.2h1V16H3v-1.6h1v-2.2L6.8 8 4 3.8V1.6H3V0Zm2.6 1.6v1.7L8 6.6l2.4-3.3V1.6H5.6Z",
  // A broken link.
  offline: "M1.1 0 16 14.9 14.9 16 11 12.1H9.5v-1.6h.1L5.4 6.3A2.4 2.4 0 0 0 4 8.5a2.4 2.4 0 0 0 2.4 2.4h1.5v1.6H6.4A4 4 0 0 1 4.2 5.1L0 1.1 1.1 0Zm8.5 3.9a4 4 0 0 1 2.9 6.8l-1.1-1.1a2.4 2.4 0 0 0-1.8-4.1H8V3.9h1.6Z",
};

export function Icon({ name }: { name: IconName }) {
  return (
    <svg class={`icon icon-${name}`} viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">
      <path d={PATHS[name]} fill="currentColor" fill-rule="evenodd" />
    </svg>
  );
}
