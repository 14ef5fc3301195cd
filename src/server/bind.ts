import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { circlesError } from '../errors/index.js'

export interface BindTarget {
  readonly host: string
  readonly port: number
  /** Which listener this is, for the start-up error: `the admin listener`, `circle "alice"`. */
  readonly listener: string
  /** What an operator can do when the port is taken. */
  readonly remedy: string
}

/**
 * Bind `http` and resolve with the bound port. A port in use is ADDRESS_IN_USE naming the
 * listener, the address and the remedy (a bare EADDRINUSE names neither the circle nor the
 * flag to change). Errors after the bind go to `onLaterError`: the listener's supervisor decides.
 */
export function bind(http: Server, target: BindTarget, onLaterError: (error: Error) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') return reject(error)
      const address = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`
      reject(circlesError('ADDRESS_IN_USE', `${target.listener} cannot listen on ${address}: the port is in use (by another circles process?); ${target.remedy}`, { host: target.host, port: target.port }))
    }
    http.once('error', onError)
    http.listen(target.port, target.host, () => {
      http.off('error', onError)
      http.on('error', onLaterError)
      resolve((http.address() as AddressInfo).port)
    })
  })
}
