import { runControl, type ControlCliFlags } from './control.js';

// `canary promote NAME [--full]`: the current step ends at the next check without a breach (a
// step's `pause:` included); with --full the remaining steps are skipped and the promotion follows.

export async function promoteCommand(name: string, flags: ControlCliFlags & { full?: boolean }): Promise<number> {
  return runControl(name, flags.full ? 'promote-full' : 'promote', flags);
}
