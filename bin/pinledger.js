#!/usr/bin/env node
// The published entry point: the compiled CLI (npm ci runs the build).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.stack : err); process.exitCode = 70; },
);
