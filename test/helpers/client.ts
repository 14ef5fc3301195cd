import { CirclesClient } from '../../src/client/index.js'

/** A client connected to `url` (not authenticated yet). */
export async function connectedClient(url: string): Promise<CirclesClient> {
  const client = CirclesClient.builder(url).withTimeout(60_000).build()
  await client.connect()
  return client
}
