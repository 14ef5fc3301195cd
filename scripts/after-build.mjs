// Runs at the end of `npm run build`, after tsc and esbuild.
import { chmodSync, writeFileSync } from 'node:fs'

// tsc writes the bin without its run bit, and npx (or an installed package's bin link) executes
// the file itself: without the bit every `npx circles` after a rebuild fails with "Permission denied".
chmodSync('dist/src/cli/main.js', 0o755)

// The browser build's types: the browser entry's declarations, which reach nothing of Node, so a
// browser-only project (no @types/node) type-checks against them.
writeFileSync('dist/browser/circles-client.d.ts', "export * from '../src/client/browser.js'\n")
