/**
 * The answer of one JSON-RPC batch, built as its entries' answers arrive: each is charged against
 * the batch's byte budget in request order as soon as it and every entry before it are known, and
 * one past the budget is replaced there and then by a small refusal (OUTPUT_TOO_LARGE). So the
 * node never holds much more than the budget for a batch whose entries finish in order — the
 * runs of one context do — instead of every entry's full answer until the last one finishes.
 */
export class BatchAnswer {
  private readonly texts: (string | undefined)[]
  private readonly known: boolean[]
  private readonly parts: string[] = []
  private charged = 0
  /** UTF-8 bytes of the answer so far: the brackets, and each part with its separator. */
  private used = 2

  constructor(
    size: number,
    private readonly budgetBytes: number,
    /** The answer that replaces entry `index`'s when it does not fit. */
    private readonly refusal: (index: number) => string,
    /** Called once, with the whole answer (undefined when every entry was a notification). */
    private readonly done: (text: string | undefined) => void,
  ) {
    this.texts = new Array<string | undefined>(size)
    this.known = new Array<boolean>(size).fill(false)
    if (size === 0) done(undefined)
  }

  /** Entry `index` is answered with `text` (undefined: it gets no answer). */
  set(index: number, text: string | undefined): void {
    if (this.known[index] === true) return
    this.known[index] = true
    this.texts[index] = text
    while (this.charged < this.texts.length && this.known[this.charged] === true) this.charge(this.charged++)
    if (this.charged === this.texts.length) this.done(this.parts.length === 0 ? undefined : `[${this.parts.join(',')}]`)
  }

  private charge(index: number): void {
    let text = this.texts[index]
    this.texts[index] = undefined
    if (text === undefined) return
    // A separator comes before every part but the first.
    const separator = this.parts.length === 0 ? 0 : 1
    if (this.used + separator + Buffer.byteLength(text) > this.budgetBytes) text = this.refusal(index)
    this.used += separator + Buffer.byteLength(text)
    this.parts.push(text)
  }
}
