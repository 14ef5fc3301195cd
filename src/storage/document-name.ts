import { circlesError } from '../errors/index.js'

/** Longest file name we create; most file systems allow 255 bytes. */
const MAX_FILE_NAME_BYTES = 240
const PLAIN = /[A-Za-z0-9_.-]/
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f\\]/
/**
 * An unpaired UTF-16 surrogate. UTF-8 cannot encode one: Buffer.from() would silently turn every
 * lone surrogate into U+FFFD, so '\ud800', '\udc00' and '\ufffd' would all name one file.
 * (No `u` flag: the pattern must see code units, not code points.)
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Whether `text` has an unpaired surrogate, i.e. no UTF-8 form of its own.
 *
 * @example
 * hasLoneSurrogate('🙂')     // false: a pair
 * hasLoneSurrogate('\ud83d') // true
 */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text)
}

/**
 * Check a document name. Names are relative, slash-separated paths of 1..maxBytes UTF-8 bytes
 * with no empty, "." or ".." segment, no backslash, NUL or control character, and no unpaired
 * surrogate. A name can therefore never resolve outside its namespace, whatever the file system
 * does with it, and two different names never share a file.
 *
 * @example
 * validateDocumentName('posts/2026/hello', 200) // 'posts/2026/hello'
 * validateDocumentName('\ud800', 200)           // throws INVALID_NAME (lone surrogate)
 */
export function validateDocumentName(name: unknown, maxBytes: number): string {
  if (typeof name !== 'string') throw circlesError('INVALID_NAME', 'Document name must be a string')
  if (hasLoneSurrogate(name)) {
    throw circlesError('INVALID_NAME', 'Document name must be valid Unicode (it has an unpaired surrogate)', { name: name.slice(0, 64) })
  }
  const bytes = Buffer.byteLength(name)
  if (bytes === 0 || bytes > maxBytes) {
    throw circlesError('INVALID_NAME', `Document name must be 1-${maxBytes} bytes`, { name: name.slice(0, 64) })
  }
  if (FORBIDDEN_CHAR.test(name)) {
    throw circlesError('INVALID_NAME', 'Document name must not contain NUL, control characters or "\\"', { name: name.slice(0, 64) })
  }
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw circlesError('INVALID_NAME', 'Document name must be relative with no empty, "." or ".." segments', {
        name: name.slice(0, 64),
      })
    }
  }
  return name
}

/**
 * Check a `list_data` prefix: any string (the empty one lists everything) without an unpaired
 * surrogate — such a prefix could only match names that cannot exist, and refusing it keeps
 * prefixes and names under the same rule.
 *
 * @example
 * validateListPrefix('posts/') // 'posts/'
 * validateListPrefix(5)        // throws INVALID_NAME
 */
export function validateListPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw circlesError('INVALID_NAME', 'list_data: prefix must be a string')
  if (hasLoneSurrogate(prefix)) {
    throw circlesError('INVALID_NAME', 'list_data: prefix must be valid Unicode (it has an unpaired surrogate)')
  }
  return prefix
}

/**
 * The file name a document is stored under: letters, digits, "_", "-" and inner "." stay as
 * they are, "/" becomes "!", everything else is %XX-encoded (UTF-8). The mapping is one-to-one
 * (names with unpaired surrogates, which have no UTF-8 form, are refused) and the result never
 * starts with "." (temporary files do).
 *
 * @example
 * encodeDocumentName('posts/é') // 'posts!%C3%A9.json'
 */
export function encodeDocumentName(name: string): string {
  if (hasLoneSurrogate(name)) throw circlesError('INVALID_NAME', 'Document name must be valid Unicode (it has an unpaired surrogate)')
  let out = ''
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!
    if (ch === '/') out += '!'
    else if (PLAIN.test(ch) && !(i === 0 && ch === '.')) out += ch
    else {
      const code = name.codePointAt(i)!
      const text = String.fromCodePoint(code)
      if (text.length === 2) i++
      for (const byte of Buffer.from(text)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  const file = `${out}.json`
  if (file.length > MAX_FILE_NAME_BYTES) {
    throw circlesError(
      'INVALID_NAME',
      'Document name is too long once encoded for the file system (characters other than A-Z a-z 0-9 . _ - / take 3 bytes)',
      { name: name.slice(0, 64) },
    )
  }
  return file
}

/**
 * Inverse of {@link encodeDocumentName}; `undefined` for files that are not documents: temporary
 * files, other files, and files no valid name encodes to exactly (e.g. `%41.json`, which would
 * otherwise shadow `A.json`). So documents and their files are one-to-one both ways.
 */
export function decodeDocumentName(file: string): string | undefined {
  if (!file.endsWith('.json') || file.startsWith('.')) return undefined
  const body = file.slice(0, -5).replaceAll('!', '/')
  try {
    const name = decodeURIComponent(body)
    validateDocumentName(name, MAX_FILE_NAME_BYTES)
    return encodeDocumentName(name) === file ? name : undefined
  } catch {
    return undefined
  }
}
