// The operator controls a rollout record carries (`canary promote`, `pause`, `resume`): what the
// command wrote and what the deploy answered. Kept apart from controls.ts so record.ts can name
// these types without an import circle.

export const CONTROL_KINDS = ['promote', 'promote-full', 'pause', 'resume'] as const;
export type ControlKind = (typeof CONTROL_KINDS)[number];

/** The deploy's answer to one control, written in the record by the deploy itself. */
export interface ControlAck {
  at: string;
  /** applied: acted on (or will be at the next check without a breach); refused: ignored, with why. */
  outcome: 'applied' | 'refused';
  /** How the deploy reacted, for the operator ("paused at 25%; checks continue"). */
  message: string;
  /** The canary weight when the deploy answered. */
  weight: number;
  stepIndex: number;
}

/** One control as `canary promote|pause|resume` wrote it. */
export interface Control {
  /** Unique per control: how the command finds the deploy's answer. */
  id: string;
  kind: ControlKind;
  /** Who: the same identity `canary rollback` records (the GitHub run, or user@host). */
  by: string;
  at: string;
  /** The rollout the command saw: the fence. A control for another rollout is refused. */
  rolloutId: string;
  reason?: string;
  ack?: ControlAck;
}

export interface ControlsState {
  /** The most recent controls, oldest first, bounded (MAX_CONTROLS). */
  log: Control[];
  /** An operator's pause in force, as the deploy applied it. */
  paused?: { by: string; at: string; reason?: string; acknowledgedAt: string };
  /** A step's own pause in force (policy `pause:`): since when, and until when (null: until promoted). */
  stepPause?: { stepIndex: number; since: string; until: string | null };
  /** A `canary promote` the deploy accepted and acts on at the next check without a breach. */
  promote?: { full: boolean; by: string; at: string };
}
