import { runControl, type ControlCliFlags } from './control.js';

// `canary resume NAME`: ends an operator's pause; the rollout moves forward as its checks allow
// (a step's own `pause:` still waits for `canary promote`).

export async function resumeCommand(name: string, flags: ControlCliFlags): Promise<number> {
  return runControl(name, 'resume', flags);
}
