/**
 * A small, bounded XML reader for OVF descriptors: elements, attributes and text, with
 * namespace prefixes dropped. No DTDs, entities beyond the five predefined ones, or
 * external references — an OVF is untrusted input, so the classic XML attacks (billion
 * laughs, XXE) have nothing to work with. Size, depth and element count are capped.
 */
import { ImageCorruptError } from '../../errors/index.js';

export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const MAX_DEPTH = 64;
const MAX_ELEMENTS = 50_000;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

const local = (name: string) => name.slice(name.indexOf(':') + 1);

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '';
    }
    return ENTITIES[e] ?? all;
  });
}

export function parseXml(text: string, file: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  let count = 0;
  const tag =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<![^>]*>|<\/([^\s>]+)\s*>|<([^\s/>!?]+)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)/gy;
  const bad = () => new ImageCorruptError(`${file} is not well-formed XML`, { file });
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < text.length) {
    tag.lastIndex = pos;
    m = tag.exec(text);
    if (!m) throw bad();
    pos = tag.lastIndex;
    const top = stack[stack.length - 1] as XmlElement;
    if (m[1] !== undefined) top.text += m[1];
    else if (m[2] !== undefined) {
      if (stack.length <= 1 || local(m[2]) !== top.name) throw bad();
      stack.pop();
    } else if (m[3] !== undefined) {
      if (++count > MAX_ELEMENTS || stack.length > MAX_DEPTH) {
        throw new ImageCorruptError(`${file} nests or repeats elements beyond the limits`, { file });
      }
      const attrs: Record<string, string> = {};
      for (const a of (m[4] ?? '').matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        attrs[local(a[1] as string)] = decode(a[2] ?? a[3] ?? '');
      }
      const el: XmlElement = { name: local(m[3]), attrs, children: [], text: '' };
      top.children.push(el);
      if (m[5] !== '/') stack.push(el);
    } else if (m[6] !== undefined) top.text += decode(m[6]);
  }
  if (stack.length !== 1) throw bad();
  return root;
}

/** Every descendant element with this (local) name, in document order. */
export function findAll(el: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    findAll(c, name, out);
  }
  return out;
}

export function childText(el: XmlElement, name: string): string | undefined {
  const c = el.children.find((x) => x.name === name);
  return c ? c.text.trim() : undefined;
}
