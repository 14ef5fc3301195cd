import { circlesError } from '../errors/index.js'

/** Longest file name we create; most file systems allow 255 bytes. */
const MAX_FILE_NAME_BYTES = 240
const PLAIN = /[A-Za-z0-9_.-]/
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f\\]/

/**
 * Check a document name. Names are relative, slash-separated paths of 1..maxBytes UTF-8 bytes
 * with no empty, "." or ".." segment, no backslash, NUL or control character. A name can
 * therefore never resolve outside its namespace, whatever the file system does with it.
 */
export function validateDocumentName(name: unknown, maxBytes: number): string {
  if (typeof name !== 'string') throw circlesError('INVALID_NAME', 'Document name must be a string')
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
 * The file name a document is stored under: letters, digits, "_", "-" and inner "." stay as
 * they are, "/" becomes "!", everything else is %XX-encoded (UTF-8). The mapping is one-to-one
 * and the result never starts with "." (temporary files do).
 */
export function encodeDocumentName(name: string): string {
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

/** Inverse of {@link encodeDocumentName}; `undefined` for files that are not documents. */
export function decodeDocumentName(file: string): string | undefined {
  if (!file.endsWith('.json') || file.startsWith('.')) return undefined
  const body = file.slice(0, -5).replaceAll('!', '/')
  try {
    return decodeURIComponent(body)
  } catch {
    return undefined
  }
}
