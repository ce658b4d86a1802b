import type { Command } from 'commander';
import { CoterieError } from '../../protocol/errors.js';

export function registerTrackerCommand(program: Command): void {
  program
    .command('tracker')
    .description('start a tracker')
    .action(() => {
      throw new CoterieError('UNAVAILABLE', 'the tracker is not built yet');
    });
}
