/**
 * The Redis Cluster hash slot of a key (CRC16/XMODEM of its hash tag, mod 16384), as the cluster
 * computes it: the bridge puts contexts whose keys share a slot in one script call.
 */

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

/** Slots in a Redis Cluster. */
export const HASH_SLOTS = 16_384

/** The part of a key that is hashed: the first non-empty `{…}`, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{')
  if (open < 0) return key
  const close = key.indexOf('}', open + 1)
  if (close <= open + 1) return key
  return key.slice(open + 1, close)
}

/**
 * @example
 * hashSlot('rhailib:{02ab…}') === hashSlot('rhailib:lease:{02ab…}') // true
 */
export function hashSlot(key: string): number {
  let crc = 0
  for (const byte of Buffer.from(hashTag(key))) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc % HASH_SLOTS
}
