import type { AnyCommandSpec, ParamSpec } from './command-types.js';

/**
 * The command table's rows that steer a download after download_file: pause,
 * resume and cancel (issue 17), plain rows of the one table (commands.ts),
 * after show_downloads.
 */

const DOWNLOAD: ParamSpec = { name: 'download', kind: 'download' };
const ERRORS = ['DOWNLOAD_NOT_FOUND', 'BAD_REQUEST', 'NOT_LOGGED_IN'] as const;

export const DOWNLOAD_COMMANDS: readonly AnyCommandSpec[] = [
  {
    name: 'pause_download',
    forms: [[DOWNLOAD]],
    summary:
      'pauses a download (its id, or a file name for its latest download); it stays paused across restarts until resume_download',
    example: 'pause_download 3',
    errors: ERRORS,
    run: (c, a) => c.pauseDownload(a.values.download!),
  },
  {
    name: 'resume_download',
    forms: [[DOWNLOAD]],
    summary:
      'resumes a paused, failed or cancelled download from its verified pieces (or waits for a seeder)',
    example: 'resume_download holiday.jpg',
    errors: [...ERRORS, 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.resumeDownload(a.values.download!),
  },
  {
    name: 'cancel_download',
    forms: [[DOWNLOAD]],
    summary: 'cancels a download and removes its part file and resume state',
    example: 'cancel_download 3',
    errors: ERRORS,
    run: (c, a) => c.cancelDownload(a.values.download!),
  },
];
