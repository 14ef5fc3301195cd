#!/usr/bin/env -S node --no-node-snapshot
import { isCirclesError } from '../errors/index.js'
import { runCli } from './run-cli.js'

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    if (code !== undefined) process.exitCode = code
  },
  (error: unknown) => {
    const code = isCirclesError(error) ? error.code : 'INTERNAL_ERROR'
    process.stderr.write(`circles: ${code}: ${(error as Error).message}\n`)
    process.exitCode = isCirclesError(error) && error.code === 'USAGE' ? 64 : 1
  },
)
