import { createKeyportClient, KeyportError } from "keyport/client";

/** The page's session CSRF token, set once the session is known; sent with every change. */
const csrf: { token?: string } = {};

/** The page talks to the API of the Keyport that served it; its cookie authenticates. */
export const client = createKeyportClient({ baseUrl: "", csrfToken: () => csrf.token });

export function setCsrfToken(token: string): void {
  csrf.token = token;
}

/** What to tell the user about a failed request, in plain words. */
export function messageOf(error: unknown): string {
  if (!(error instanceof KeyportError)) return "Something went wrong. Try again.";
  switch (error.code) {
    case "network_error":
      return "Could not reach the server. Check your connection and try again.";
    case "unexpected_response":
      return "The server answered with an error. Try again in a moment.";
    case "unauthenticated":
      return "Your Settings session has ended. Open Settings again from the app.";
    default:
      return error.message;
  }
}
