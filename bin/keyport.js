#!/usr/bin/env -S node --max-semi-space-size=4
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the `prepare` script).
// The V8 option caps the young generation at 4 MB per semi-space (as `npm start` does): under
// load the default lets it grow to 16 MB each, which costs about 30 MB of memory and, measured
// with `npm run bench`, buys no throughput for a gateway's short-lived objects.
import { runCli } from "../dist/cli/cli.js";

process.exitCode = await runCli(process.argv.slice(2));
