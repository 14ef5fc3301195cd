/**
 * A limit has one name, the camelCase option name (`connectionsPerAddress`, `timeoutMs`); its
 * circles.json key and its command-line flag are spelt from it, never kept by hand:
 *
 * @example
 * configKeyOf('maxNotifyValueBytes')     // 'max_notify_value_bytes'
 * flagOf('connectionsPerAddress')        // 'connections-per-address'
 */
export function configKeyOf(option: string): string {
  return option.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

export function flagOf(option: string): string {
  return option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}
