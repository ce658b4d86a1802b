import type { FileSummary } from './api.js';

/**
 * A file's verified replicas as `list_files` and the web UI show them:
 * "2/3" (live / min), "1/2 +1 in grace" while a storage peer is away but not
 * yet given up, "-" for a group without storage peers or policy.
 */
export function replicasText(r: FileSummary['replicas']): string {
  if (r === undefined) return '-';
  return `${r.live}/${r.min}${r.grace > 0 ? ` +${r.grace} in grace` : ''}`;
}

/**
 * A file's live seeders as `list_files` and the web UI show them: "3" with
 * whole seeders only, "3, 5 partial" while downloaders serve their verified
 * pieces too.
 */
export function seedersText(f: Pick<FileSummary, 'seeders' | 'partialSeeders'>): string {
  const partial = f.partialSeeders ?? 0;
  return partial > 0 ? `${f.seeders}, ${partial} partial` : String(f.seeders);
}
