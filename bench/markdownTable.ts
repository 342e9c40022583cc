/** `v` rounded to `digits` decimals (a figure of a JSON line), or undefined where not measured. */
export const round = (v: number | undefined, digits = 2): number | undefined =>
  v === undefined ? undefined : Number(v.toFixed(digits));

/** `v` with `digits` decimals, or "–" where it was not measured. */
export const fixed = (v: number | undefined, digits: number): string =>
  v === undefined ? '–' : v.toFixed(digits);

/**
 * The lines of a Markdown table of `rows` under `header`, columns padded to their widest cell
 * and right-aligned (figures), but the first when `labels` says it holds labels (left-aligned).
 */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  labels = false,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const left = (i: number) => labels && i === 0;
  const format = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = (w: number, i: number) => (left(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`);
  return [format(header), `| ${widths.map(rule).join(' | ')} |`, ...rows.map(format)];
}
