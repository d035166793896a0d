import { runControl, type ControlCliFlags } from './control.js';

// `canary pause NAME [--reason]`: the rollout stops moving forward; its checks go on, and a
// breach still rolls it back.

export async function pauseCommand(name: string, flags: ControlCliFlags): Promise<number> {
  return runControl(name, 'pause', flags);
}
