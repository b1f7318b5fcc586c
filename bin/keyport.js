#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the `prepare` script).
// `npm start` runs it with V8 options that bound the heap under load (docs/decisions.md, "V8 heap
// options"); they cannot be set from inside the process, and a shebang carrying them needs
// `env -S`, which BusyBox (Alpine) lacks.
import { runCli } from "../dist/cli/cli.js";

process.exitCode = await runCli(process.argv.slice(2));
