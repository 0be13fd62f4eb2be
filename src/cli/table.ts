/** Plain aligned columns for people; scripts use --json. */

/** Columns separated by two spaces, padded to the widest cell; the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** A time as people read it in a table: UTC to the second, `-` when absent. */
export function tableTime(d: Date | undefined): string {
  if (!d || Number.isNaN(d.getTime())) return '-';
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Untrusted text (names, messages from a server) on one table line, without control characters. */
export function cell(text: string | number | boolean | undefined | null, max = 80): string {
  if (text === undefined || text === null || text === '') return '-';
  // eslint-disable-next-line no-control-regex
  const s = String(text).replace(/[\x00-\x1f\x7f]+/g, ' ');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
