import { PassThrough } from 'node:stream'

/** Streams to hand `runCli` as its stdout and stderr, and what was written on each so far. */
export function io(): { io: { stdout: PassThrough; stderr: PassThrough }; out: { stdout: string; stderr: string } } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out = { stdout: '', stderr: '' }
  stdout.on('data', (c: Buffer) => (out.stdout += c.toString()))
  stderr.on('data', (c: Buffer) => (out.stderr += c.toString()))
  return { io: { stdout, stderr }, out }
}
