/**
 * `--filter-skb-expr` (pwru) text → expression tree. A small C-like
 * language over the skb's fields:
 *
 *   skb->len > 1000 && skb->dev->name == "eth0"
 *   skb->mark & 0xff == 0x42            (& binds tighter than ==, as in Go)
 *   !(skb->pkt_type == 0) || skb->sk->__sk_common.skc_dport == 0x5000
 *
 * Operands: a field path starting at `skb` (`->` through pointers, `.` into
 * structs), optionally masked (`& N`); a pointer cast of a sum of fields and
 * numbers, then a path from it (`((struct iphdr *)(skb->head +
 * skb->network_header))->ttl`); a byte range of a pointer or an array
 * (`skb->head[skb->mac_header:14]`: N bytes from the index, which is a field
 * or a number); numbers (decimal, 0x hex, negative); double-quoted strings.
 * A field alone is true when it is not zero. Every error carries the column
 * it is at.
 */

export class SkbExprError extends Error {
  override name = 'SkbExprError';
  /** 1-based column in the expression. */
  constructor(readonly column: number, readonly what: string) {
    super(`at column ${column}: ${what}`);
  }
}

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export interface PathStep {
  op: '->' | '.';
  name: string;
  at: number;
}

/** `((struct NAME *)(a + b))`: the address the path starts from, as a pointer to struct NAME. */
export interface CastBase {
  struct: string;
  terms: Operand[];
  at: number;
}

/** `[index:length]` after a pointer or an array: `length` bytes from the index. */
export interface ByteRange {
  index: Operand;
  length: number;
  at: number;
}

export type Operand =
  /** `text`: the path as written (`skb->dev->name`), for messages; `root` is '' after a cast. */
  | { kind: 'field'; root: string; path: PathStep[]; mask: bigint | null; at: number; text: string; cast?: CastBase; range?: ByteRange }
  | { kind: 'number'; value: bigint; at: number }
  | { kind: 'string'; value: string; at: number };

export type ExprNode =
  | { kind: 'and' | 'or'; left: ExprNode; right: ExprNode }
  | { kind: 'not'; operand: ExprNode }
  | { kind: 'cmp'; op: CmpOp; left: Operand; right: Operand; at: number }
  | { kind: 'truthy'; value: Operand; at: number };

type Token =
  | { t: 'ident'; v: string; at: number }
  | { t: 'num'; v: bigint; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

const OPERATORS = ['->', '==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '&', '.', '(', ')', '[', ']', ':', '+', '*'];

/** Bytes a range may name: what a probe copies per field. */
export const MAX_RANGE_BYTES = 64;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i + 1;
    const num = /^-?(0x[0-9a-fA-F]+|\d+)/.exec(text.slice(i));
    if (num && (c !== '-' || /\d/.test(text[i + 1] ?? ''))) {
      const neg = num[0].startsWith('-');
      const digits = neg ? num[0].slice(1) : num[0];
      if (/^[A-Za-z_]/.test(text[i + num[0].length] ?? '')) throw new SkbExprError(at, `'${num[0]}${text[i + num[0].length]}' is not a number`);
      const v = BigInt(digits);
      out.push({ t: 'num', v: neg ? -v : v, at });
      i += num[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (ident) {
      out.push({ t: 'ident', v: ident[0], at });
      i += ident[0].length;
      continue;
    }
    if (c === '"') {
      let v = '';
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        v += text[j];
      }
      if (j >= text.length) throw new SkbExprError(at, 'the string is not closed (")');
      out.push({ t: 'str', v, at });
      i = j + 1;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) throw new SkbExprError(at, `unexpected '${c}'`);
    out.push({ t: 'op', v: op, at });
    i += op.length;
  }
  out.push({ t: 'end', at: text.length + 1 });
  return out;
}

const CMP_OPS = new Set<string>(['==', '!=', '<', '<=', '>', '>=']);

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[], private readonly text: string) {}

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private isOp(v: string, ahead = 0): boolean {
    const t = this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)]!;
    return t.t === 'op' && t.v === v;
  }

  /** `((struct`: a cast, not a group. */
  private castAhead(): boolean {
    const t = this.tokens[Math.min(this.pos + 2, this.tokens.length - 1)]!;
    return this.isOp('(') && this.isOp('(', 1) && t.t === 'ident' && t.v === 'struct';
  }

  private expect(op: string, what: string): Token {
    const t = this.peek();
    if (!this.isOp(op)) throw new SkbExprError(t.at, `'${op}' expected ${what}, not ${this.describe(t)}`);
    this.pos++;
    return t;
  }

  private describe(t: Token): string {
    return t.t === 'end' ? 'the end' : t.t === 'str' ? `"${t.v}"` : `'${String(t.v)}'`;
  }

  parse(): ExprNode {
    const e = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw new SkbExprError(t.at, `unexpected ${this.describe(t)} (join conditions with && or ||)`);
    return e;
  }

  private or(): ExprNode {
    let left = this.and();
    while (this.isOp('||')) {
      this.pos++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): ExprNode {
    let left = this.unary();
    while (this.isOp('&&')) {
      this.pos++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): ExprNode {
    if (this.isOp('!')) {
      this.pos++;
      return { kind: 'not', operand: this.unary() };
    }
    if (this.isOp('(') && !this.castAhead()) {
      const open = this.peek();
      this.pos++;
      const inner = this.or();
      if (!this.isOp(')')) throw new SkbExprError(this.peek().at, `')' expected for the '(' at column ${open.at}`);
      this.pos++;
      // `(skb->mark & 0xff) == 0x42`: a parenthesised operand compared.
      if (inner.kind === 'truthy' && this.peekCmp()) return this.comparison(inner.value, inner.at);
      return inner;
    }
    const at = this.peek().at;
    return this.comparison(this.operand(), at);
  }

  private peekCmp(): boolean {
    const t = this.peek();
    return t.t === 'op' && CMP_OPS.has(t.v);
  }

  private comparison(left: Operand, at: number): ExprNode {
    if (!this.peekCmp()) return { kind: 'truthy', value: left, at };
    const op = (this.tokens[this.pos++] as { v: string }).v as CmpOp;
    return { kind: 'cmp', op, left, right: this.operand(), at };
  }

  private operand(): Operand {
    const t = this.peek();
    if (t.t === 'num') {
      this.pos++;
      return { kind: 'number', value: t.v, at: t.at };
    }
    if (t.t === 'str') {
      this.pos++;
      return { kind: 'string', value: t.v, at: t.at };
    }
    const f = this.castAhead() ? this.cast() : this.field();
    if (this.isOp('[')) f.range = this.range();
    else if (this.isOp('&')) {
      this.pos++;
      const m = this.peek();
      if (m.t !== 'num') throw new SkbExprError(m.at, 'a number expected after & (a mask)');
      this.pos++;
      f.mask = m.v;
    }
    f.text = this.text.slice(f.at - 1, this.peek().at - 1).trim().replace(/\s*&[^&]*$/, '');
    return f;
  }

  /** `->a.b->c` after a root or a cast. */
  private steps(): PathStep[] {
    const path: PathStep[] = [];
    while (this.isOp('->') || this.isOp('.')) {
      const op = (this.tokens[this.pos++] as { v: string }).v as '->' | '.';
      const name = this.peek();
      if (name.t !== 'ident') throw new SkbExprError(name.at, `a field name expected after '${op}'`);
      this.pos++;
      path.push({ op, name: name.v, at: name.at });
    }
    return path;
  }

  private field(): Extract<Operand, { kind: 'field' }> {
    const t = this.peek();
    if (t.t !== 'ident') throw new SkbExprError(t.at, `a field (skb->…), a number or a string expected, not ${this.describe(t)}`);
    this.pos++;
    const path = this.steps();
    return { kind: 'field', root: t.v, path, mask: null, at: t.at, text: this.text.slice(t.at - 1, this.peek().at - 1).trim() };
  }

  /** `((struct NAME *)X)->path` or `((struct NAME *)(X + Y + N))->path`. */
  private cast(): Extract<Operand, { kind: 'field' }> {
    const at = this.peek().at;
    this.pos += 3;
    const name = this.peek();
    if (name.t !== 'ident') throw new SkbExprError(name.at, 'a struct name expected after \'struct\'');
    this.pos++;
    this.expect('*', 'in the cast (struct NAME *)');
    this.expect(')', 'to close the cast (struct NAME *)');
    const terms: Operand[] = [];
    if (this.isOp('(')) {
      this.pos++;
      do {
        const term = this.peek();
        terms.push(term.t === 'num' ? (this.pos++, { kind: 'number', value: term.v, at: term.at }) : this.field());
      } while (this.isOp('+') && ++this.pos);
      this.expect(')', 'after the address (a + b)');
    } else {
      terms.push(this.field());
    }
    this.expect(')', 'around the cast: ((struct NAME *)p)->field');
    const path = this.steps();
    if (path.length === 0 || path[0]!.op !== '->') {
      throw new SkbExprError(this.peek().at, `'->' expected after the cast to struct ${name.v} *`);
    }
    return { kind: 'field', root: '', path, mask: null, at, text: '', cast: { struct: name.v, terms, at: name.at } };
  }

  /** `[index:length]`: index a field or a number, length a number. */
  private range(): ByteRange {
    const at = this.peek().at;
    this.pos++;
    const i = this.peek();
    const index: Operand = i.t === 'num' ? (this.pos++, { kind: 'number', value: i.v, at: i.at }) : this.field();
    this.expect(':', 'between the index and the length ([index:length])');
    const n = this.peek();
    if (n.t !== 'num' || n.v < 1n || n.v > BigInt(MAX_RANGE_BYTES)) {
      throw new SkbExprError(n.at, `a length of 1 to ${MAX_RANGE_BYTES} bytes expected, not ${this.describe(n)}`);
    }
    this.pos++;
    this.expect(']', 'to close the range');
    return { index, length: Number(n.v), at };
  }
}

export function parseSkbExpr(text: string): ExprNode {
  if (text.trim() === '') throw new SkbExprError(1, 'the expression is empty');
  return new Parser(tokenize(text), text).parse();
}
