import type { AnyCommandSpec, ParamSpec } from './command-types.js';

/**
 * The command table's rows for bandwidth limits and the weekly schedule (issue 17). Plain rows
 * of the one table (commands.ts), after the storage rows. Rates are checked by the daemon's
 * limits (peer/limits.ts), which answers USAGE for a bad one before changing anything.
 */

const p = (name: string, kind: ParamSpec['kind']): ParamSpec => ({ name, kind });
const defined = <T extends Record<string, string | undefined>>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: string };

export const LIMIT_COMMANDS: readonly AnyCommandSpec[] = [
  {
    name: 'set_limits',
    forms: [[]],
    options: ['group', 'upload', 'download'],
    summary:
      "sets the upload and download limits (KiB/s, MiB/s, GiB/s; 0 = unlimited): the daemon's, or --group G's; in force within 1 s",
    example: 'set_limits --upload 20MiB/s --download 50MiB/s',
    errors: ['INVALID_NAME'],
    run: (c, a) =>
      c.setLimits(
        defined({ group: a.options.group, upload: a.options.upload, download: a.options.download }),
      ),
  },
  {
    name: 'set_schedule',
    forms: [[p('days', 'days'), p('hours', 'hours'), p('mode', 'slot_mode')], []],
    options: ['upload', 'download'],
    summary:
      'sets the weekly schedule in 15-minute slots: DAYS HOURS full|limited|upload-only|paused (limited slots run at --upload/--download RATE)',
    example: 'set_schedule mon-fri 18:00-23:00 limited --download 2MiB/s',
    errors: [],
    run: (c, a) =>
      c.setSchedule(
        defined({
          days: a.values.days,
          hours: a.values.hours,
          mode: a.values.mode,
          upload: a.options.upload,
          download: a.options.download,
        }),
      ),
  },
  {
    name: 'show_limits',
    forms: [[]],
    summary: 'shows the bandwidth limits, the weekly schedule and the slot in force',
    example: 'show_limits',
    errors: [],
    run: (c) => c.showLimits(),
  },
];
