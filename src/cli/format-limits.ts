import type { LimitsView } from '../protocol/control.js';
import { formatRate } from '../protocol/rates.js';
import { shown } from './sanitize.js';
import { table } from './text-table.js';

/** status's line: the global limits and the schedule slot in force. */
export function limitsLine(l: LimitsView): string {
  return `limits: upload ${formatRate(l.global.uploadBytesPerSec)}, download ${formatRate(l.global.downloadBytesPerSec)}; schedule ${l.schedule.mode} (${l.schedule.slot})`;
}

/** show_limits, set_limits and set_schedule: the limits, each group's, and the schedule. */
export function formatLimits(l: LimitsView): string {
  const limited = l.schedule.limited;
  return [
    `upload: ${formatRate(l.global.uploadBytesPerSec)}, download: ${formatRate(l.global.downloadBytesPerSec)}${l.exemptLocal ? ' (local network exempt)' : ''}`,
    ...(l.groups.length === 0
      ? []
      : [
          table(
            ['GROUP', 'UPLOAD', 'DOWNLOAD'],
            l.groups.map((g) => [
              shown(g.groupId),
              formatRate(g.uploadBytesPerSec),
              formatRate(g.downloadBytesPerSec),
            ]),
          ),
        ]),
    `schedule: ${l.schedule.mode} now (${l.schedule.slot}); limited slots: upload ${formatRate(limited.uploadBytesPerSec)}, download ${formatRate(limited.downloadBytesPerSec)}`,
    ...(l.schedule.ranges.length === 0
      ? ['every slot is full (no schedule set)']
      : [
          table(
            ['FROM', 'TO', 'MODE'],
            l.schedule.ranges.map((r) => [r.from, r.to, r.mode]),
          ),
        ]),
  ].join('\n');
}
