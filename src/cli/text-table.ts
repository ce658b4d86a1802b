/**
 * Left-aligned columns, two spaces apart. Given a width (the terminal's), cells wrap at spaces
 * inside their column instead of running past the edge: the columns before the last are capped
 * at 45% of the width each, the last takes what is left.
 */
export function table(header: string[], rows: string[][], width?: number): string {
  const natural = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fits = width === undefined || natural.reduce((a, b) => a + b + 2, -2) <= width;
  const widths = fits ? natural : capped(natural, width);
  const line = (cells: string[]): string[] => {
    // A wrapped cell of an earlier column goes on two spaces in, under its first line.
    const wrapped = cells.map((c, i) =>
      fits ? [c] : i === cells.length - 1 ? wrapText(c, widths[i]!) : hanging(c, widths[i]!),
    );
    const height = Math.max(1, ...wrapped.map((w) => w.length));
    return Array.from({ length: height }, (_, k) =>
      wrapped
        .map((w, i) => (i === wrapped.length - 1 ? (w[k] ?? '') : (w[k] ?? '').padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  };
  return [header, ...rows].flatMap(line).join('\n');
}

function capped(natural: number[], width: number): number[] {
  const cap = Math.max(12, Math.floor(width * 0.45));
  const firsts = natural.slice(0, -1).map((n) => Math.min(n, cap));
  const used = firsts.reduce((a, b) => a + b + 2, 0);
  return [...firsts, Math.max(20, width - used)];
}

function hanging(text: string, width: number): string[] {
  const [head = '', ...tail] = wrapText(text, width);
  return [head, ...(tail.length === 0 ? [] : wrapText(tail.join(' '), width - 2).map((l) => `  ${l}`))];
}

/** Words of `text` in lines of at most `width` characters (a longer word is cut). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (let word of text.split(' ')) {
    while (word.length > width) {
      if (cur !== '') lines.push(cur);
      lines.push(word.slice(0, width));
      word = word.slice(width);
      cur = '';
    }
    if (cur === '') cur = word;
    else if (cur.length + 1 + word.length <= width) cur += ` ${word}`;
    else {
      lines.push(cur);
      cur = word;
    }
  }
  if (cur !== '' || lines.length === 0) lines.push(cur);
  return lines;
}

/** The width help is wrapped to: the terminal's, 80 when output is no terminal. */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number {
  return stream.isTTY && stream.columns > 0 ? stream.columns : 80;
}
