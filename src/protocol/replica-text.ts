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
