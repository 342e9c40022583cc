// A parser of Structured Field Lists following RFC 9651, section 4.2, step by step.

/** A bare item of a Structured Field, tagged with its type. */
export type SfBareItem =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'decimal'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'token'; readonly value: string }
  | { readonly type: 'binary'; readonly value: Uint8Array }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'date'; readonly value: number }
  | { readonly type: 'displaystring'; readonly value: string };

/** Parameters in the order they came; a repeated key keeps its last value. */
export type SfParameters = ReadonlyMap<string, SfBareItem>;

export interface SfItem {
  readonly kind: 'item';
  readonly value: SfBareItem;
  readonly params: SfParameters;
}

export interface SfInnerList {
  readonly kind: 'innerList';
  readonly items: readonly SfItem[];
  readonly params: SfParameters;
}

/**
 * The members of a Structured Field List, or undefined when the value is not one: a parser
 * must fail the whole field (RFC 9651, section 4.2). Several field lines are joined by commas.
 */
export function parseSfList(
  value: string | readonly string[] | undefined,
): (SfItem | SfInnerList)[] | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.join(', ');
  try {
    const parser = new Parser(text);
    parser.skip(' ');
    const members = parser.list();
    parser.skip(' ');
    return parser.done() ? members : undefined;
  } catch (err) {
    if (err instanceof SfSyntaxError) return undefined;
    throw err;
  }
}

class SfSyntaxError extends Error {}

const DIGIT = /[0-9]/;
const LCALPHA = /[a-z]/;
const ALPHA = /[A-Za-z]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const BASE64_CHAR = /[A-Za-z0-9+/=]/;
const LCHEX = /[0-9a-f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

class Parser {
  private pos = 0;
  constructor(private readonly input: string) {}

  done(): boolean {
    return this.pos >= this.input.length;
  }

  skip(chars: string): void {
    while (!this.done() && chars.includes(this.peek())) this.pos++;
  }

  list(): (SfItem | SfInnerList)[] {
    const members: (SfItem | SfInnerList)[] = [];
    while (!this.done()) {
      members.push(this.peek() === '(' ? this.innerList() : this.item());
      this.skip(' \t');
      if (this.done()) return members;
      if (this.next() !== ',') fail();
      this.skip(' \t');
      if (this.done()) fail(); // a trailing comma
    }
    return members;
  }

  private innerList(): SfInnerList {
    this.next(); // "("
    const items: SfItem[] = [];
    while (!this.done()) {
      this.skip(' ');
      if (this.peek() === ')') {
        this.next();
        return { kind: 'innerList', items, params: this.parameters() };
      }
      items.push(this.item());
      if (this.peek() !== ' ' && this.peek() !== ')') fail();
    }
    return fail();
  }

  private item(): SfItem {
    const value = this.bareItem();
    return { kind: 'item', value, params: this.parameters() };
  }

  private parameters(): Map<string, SfBareItem> {
    const params = new Map<string, SfBareItem>();
    while (this.peek() === ';') {
      this.next();
      this.skip(' ');
      const key = this.key();
      let value: SfBareItem = { type: 'boolean', value: true };
      if (this.peek() === '=') {
        this.next();
        value = this.bareItem();
      }
      params.set(key, value);
    }
    return params;
  }

  private key(): string {
    const first = this.peek();
    if (!LCALPHA.test(first) && first !== '*') fail();
    let key = '';
    while (!this.done() && KEY_CHAR.test(this.peek())) key += this.next();
    return key;
  }

  private bareItem(): SfBareItem {
    const c = this.peek();
    if (c === '-' || DIGIT.test(c)) return this.number();
    if (c === '"') return { type: 'string', value: this.string() };
    if (c === '*' || ALPHA.test(c)) return { type: 'token', value: this.token() };
    if (c === ':') return { type: 'binary', value: this.binary() };
    if (c === '?') return { type: 'boolean', value: this.boolean() };
    if (c === '@') return this.date();
    if (c === '%') return { type: 'displaystring', value: this.displayString() };
    return fail();
  }

  private number(): SfBareItem {
    let sign = 1;
    if (this.peek() === '-') {
      this.next();
      sign = -1;
    }
    if (!DIGIT.test(this.peek())) fail();
    let digits = '';
    let decimal = false;
    while (!this.done()) {
      const c = this.peek();
      if (DIGIT.test(c)) digits += this.next();
      else if (!decimal && c === '.') {
        if (digits.length > 12) fail();
        digits += this.next();
        decimal = true;
      } else break;
      if (!decimal && digits.length > 15) fail();
      if (decimal && digits.length > 16) fail();
    }
    if (!decimal) return { type: 'integer', value: sign * Number(digits) };
    if (digits.endsWith('.') || digits.length - digits.indexOf('.') - 1 > 3) fail();
    return { type: 'decimal', value: sign * Number(digits) };
  }

  private string(): string {
    this.next(); // '"'
    let out = '';
    while (!this.done()) {
      const c = this.next();
      if (c === '\\') {
        const escaped = this.next();
        if (escaped !== '"' && escaped !== '\\') fail();
        out += escaped;
      } else if (c === '"') return out;
      else if (c < ' ' || c > '~') fail();
      else out += c;
    }
    return fail();
  }

  private token(): string {
    let out = this.next();
    while (!this.done() && TOKEN_CHAR.test(this.peek())) out += this.next();
    return out;
  }

  private binary(): Uint8Array {
    this.next(); // ":"
    let b64 = '';
    while (!this.done()) {
      const c = this.next();
      if (c === ':') return decodeBase64(b64);
      if (!BASE64_CHAR.test(c)) fail();
      b64 += c;
    }
    return fail();
  }

  private boolean(): boolean {
    this.next(); // "?"
    const c = this.next();
    if (c === '1') return true;
    if (c === '0') return false;
    return fail();
  }

  private date(): SfBareItem {
    this.next(); // "@"
    const n = this.number();
    if (n.type !== 'integer') fail();
    return { type: 'date', value: n.value as number };
  }

  private displayString(): string {
    this.next(); // "%"
    if (this.next() !== '"') fail();
    const bytes: number[] = [];
    while (!this.done()) {
      const c = this.next();
      if (c < ' ' || c > '~') fail();
      if (c === '%') {
        const hex = this.next() + this.next();
        if (!LCHEX.test(hex[0] ?? '') || !LCHEX.test(hex[1] ?? '')) fail();
        bytes.push(parseInt(hex, 16));
      } else if (c === '"') {
        try {
          return utf8.decode(new Uint8Array(bytes));
        } catch {
          return fail();
        }
      } else bytes.push(c.charCodeAt(0));
    }
    return fail();
  }

  private peek(): string {
    return this.input[this.pos] ?? '';
  }

  private next(): string {
    if (this.done()) fail();
    return this.input[this.pos++] as string;
  }
}

/**
 * Strict base64 (RFC 9651, section 4.2.7: decoding that fails fails the field): "=" only as
 * the final padding, and a length that encodes whole bytes. Missing padding and non-zero pad
 * bits are accepted, as the RFC asks; Buffer alone would skip any "=" and stray characters.
 */
function decodeBase64(b64: string): Uint8Array {
  const [, data = '', pad = ''] = /^([A-Za-z0-9+/]*)(={0,2})$/.exec(b64) ?? fail();
  if (data.length % 4 === 1) fail(); // one character is 6 bits: no whole byte
  if (pad !== '' && (data.length % 4 === 0 || (data.length + pad.length) % 4 !== 0)) fail();
  return new Uint8Array(Buffer.from(data, 'base64'));
}

function fail(): never {
  throw new SfSyntaxError('not a Structured Field List');
}
