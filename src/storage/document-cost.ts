/**
 * What a document costs against its namespace's byte quota.
 *
 * The figure approximates what the document really takes on disk, so that many small documents
 * cannot hide behind a tiny total: file systems allocate whole blocks (4 KiB on ext4, xfs and
 * most others), so a value is charged in whole blocks — an empty or 1-byte value costs as much
 * as a 4,096-byte one — and the file name is charged too, since it lives in the directory.
 */

/** The allocation unit a value is rounded up to. */
export const STORAGE_BLOCK_BYTES = 4096

/**
 * The cost of one document, in bytes: its value (the JSON text, UTF-8) rounded up to whole
 * {@link STORAGE_BLOCK_BYTES} blocks, at least one block, plus the bytes of the file name it is
 * stored under (the encoded name, `.json` included — see `encodeDocumentName`).
 *
 * `cost = max(1, ceil(valueBytes / 4096)) × 4096 + fileNameBytes`
 *
 * @example
 * documentCostBytes(0, 6)      // 4102: "a.json" holding nothing still takes a block
 * documentCostBytes(4096, 6)   // 4102
 * documentCostBytes(4097, 6)   // 8198: one byte more takes a second block
 */
export function documentCostBytes(valueBytes: number, fileNameBytes: number): number {
  const blocks = Math.max(1, Math.ceil(valueBytes / STORAGE_BLOCK_BYTES))
  return blocks * STORAGE_BLOCK_BYTES + fileNameBytes
}
