#!/usr/bin/env node
// The `tide` command. Runs the compiled CLI from dist/ (built by `npm ci` / `npm run build`).
import { main } from '../dist/cli/main.js'

main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code
  },
  (err) => {
    console.error(err)
    process.exitCode = 1
  },
)
