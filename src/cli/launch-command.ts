import type { CliIo } from './run-cli.js'

export async function launchCommand(_argv: readonly string[], io: CliIo): Promise<number> {
  io.stdout.write('circles: no circles are served yet (the launcher is not built in this version)\n')
  return 0
}
