/** A minimal YAML emitter for JSON-shaped values (templates): block style, quoted strings. */
export function toYaml(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`;
    return value
      .map((v) => {
        if (isScalar(v)) return `${pad}- ${scalar(v)}\n`;
        const inner = toYaml(v, indent + 2);
        return `${pad}- ${inner.slice(indent + 2)}`;
      })
      .join('');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries
      .map(([k, v]) =>
        isScalar(v) ? `${pad}${key(k)}: ${scalar(v)}\n` : `${pad}${key(k)}:\n${toYaml(v, indent + 2)}`,
      )
      .join('');
  }
  return `${pad}${scalar(value)}\n`;
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object' || (Array.isArray(v) && v.length === 0);
}

function scalar(v: unknown): string {
  if (Array.isArray(v)) return '[]';
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return 'null';
  return String(v);
}

function key(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_:.-]*$/.test(k) ? k : JSON.stringify(k);
}
