import { render } from "preact";
import { App } from "./app.js";

const root = document.getElementById("app");
if (root !== null) {
  // The static "Loading…" line is for the moment before this script runs.
  root.replaceChildren();
  render(<App />, root);
}
