import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Markers live in memory-backed storage when the machine has it. */
const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
let directory: string | undefined
let markers = 0

/**
 * This process's marker directory: made on first use with an unpredictable name and mode 0700
 * (mkdtemp), so that nobody else can plant a file or a link where a marker will be, and removed
 * when the process exits.
 */
function markerDirectory(): string {
  if (directory === undefined) {
    const made = mkdtempSync(join(BASE, 'circles-markers-'))
    directory = made
    process.once('exit', () => rmSync(made, { recursive: true, force: true }))
  }
  return directory
}

/**
 * A sandbox host's progress marker: a 4-byte file the host's worker writes the sequence number
 * of each run it starts into, read by the node once the host has died. The node creates it
 * (O_EXCL | O_NOFOLLOW, mode 0600: a new file, never one that was there, never through a link)
 * and keeps its own descriptor to read it.
 */
export interface ProgressMarker {
  readonly path: string
  /** The sequence number of the run the host last started; undefined before its first. */
  read(): number | undefined
  /** Close and delete it (the host has exited). */
  remove(): void
}

export function createMarker(): ProgressMarker {
  const path = join(markerDirectory(), `host-${process.pid}-${++markers}.progress`)
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  const bytes = Buffer.alloc(4)
  let removed = false
  return {
    path,
    read() {
      if (removed) return undefined
      return readSync(fd, bytes, 0, 4, 0) === 4 ? bytes.readInt32LE(0) : undefined
    },
    remove() {
      if (removed) return
      removed = true
      closeSync(fd)
      rmSync(path, { force: true })
    },
  }
}

/** How a host opens the marker its node made: to write, never creating a file nor following a link. */
export function openMarkerForWriting(path: string): number {
  return openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW)
}
