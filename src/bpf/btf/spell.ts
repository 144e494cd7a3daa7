/**
 * BTF types spelled as C declares them: `struct sk_buff *`, `enum skb_drop_reason`,
 * `u32`, `const char *`, `int (*)(struct foo *, int)`.
 */
import { type Btf, BtfKind } from './btf.js';

const MAX_DEPTH = 32;

/** The C spelling of type `id`. */
export function spellType(btf: Btf, id: number): string {
  return spell(btf, id, 0);
}

function skipTags(btf: Btf, id: number): number {
  while (btf.kindOf(id) === BtfKind.TYPE_TAG) id = btf.refType(id);
  return id;
}

function spell(btf: Btf, id: number, depth: number): string {
  if (depth > MAX_DEPTH) return '...';
  const t = btf.type(id);
  const name = t.name || '(anon)';
  switch (t.kind) {
    case 'VOID':
      return 'void';
    case 'INT':
    case 'FLOAT':
    case 'TYPEDEF':
    case 'FUNC':
    case 'VAR':
    case 'DATASEC':
      return name;
    case 'STRUCT':
      return `struct ${name}`;
    case 'UNION':
      return `union ${name}`;
    case 'ENUM':
    case 'ENUM64':
      return `enum ${name}`;
    case 'FWD':
      return `${t.fwdKind} ${name}`;
    case 'PTR': {
      const target = skipTags(btf, t.type);
      if (btf.kindOf(target) === BtfKind.FUNC_PROTO) return spellProto(btf, target, '(*)', depth + 1);
      const inner = spell(btf, t.type, depth + 1);
      return inner.endsWith('*') ? `${inner}*` : `${inner} *`;
    }
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT': {
      const q = t.kind.toLowerCase();
      const inner = spell(btf, t.type, depth + 1);
      // Qualifiers of a pointer follow the star.
      return btf.kindOf(skipTags(btf, t.type)) === BtfKind.PTR ? `${inner} ${q}` : `${q} ${inner}`;
    }
    case 'TYPE_TAG':
      return spell(btf, t.type, depth + 1);
    case 'ARRAY':
      return `${spell(btf, t.type, depth + 1)}[${t.nelems}]`;
    case 'FUNC_PROTO':
      return spellProto(btf, id, '', depth + 1);
    case 'DECL_TAG':
      return `${name} tag of ${spell(btf, t.type, depth + 1)}`;
  }
}

function spellProto(btf: Btf, id: number, declarator: string, depth: number): string {
  const t = btf.typeAs(id, 'FUNC_PROTO');
  const args = t.params.map((p) => spell(btf, p.type, depth + 1));
  if (t.variadic) args.push('...');
  const ret = spell(btf, t.ret, depth + 1);
  const sep = declarator && !ret.endsWith('*') ? ' ' : '';
  return `${ret}${sep}${declarator}(${args.length ? args.join(', ') : 'void'})`;
}
