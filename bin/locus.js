#!/usr/bin/env node
'use strict';
// Runs the TypeScript sources through tsx in a development checkout, or the compiled dist/ in an
// image built with `npm run build` (no dev dependencies there).
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const src = path.join(root, 'src', 'cli.ts');
const dist = path.join(root, 'dist', 'src', 'cli.js');
let cli;
if (fs.existsSync(src) && fs.existsSync(path.join(root, 'node_modules', 'tsx'))) {
  require('tsx/cjs');
  cli = require(src);
} else {
  cli = require(dist);
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`locus: ${e && e.message ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
