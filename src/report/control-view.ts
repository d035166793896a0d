import type { ControlKind } from '../rollout/control-types.js';
import { controlWords } from '../rollout/controls.js';
import { FINAL_PHASES, type RolloutRecord } from '../rollout/record.js';

// What `status` shows of operator controls and manual gates: who paused, promoted or resumed and
// when, whether the deploy answered, and the pause (an operator's or a step's) in force.

export interface ControlLine {
  kind: ControlKind;
  by: string;
  at: string;
  reason: string | null;
  /** The deploy's answer; null while it has not answered. */
  ack: { at: string; outcome: 'applied' | 'refused'; message: string; weight: number } | null;
}

export interface GatesView {
  /** PAUSED: an operator's pause in force (checks continue), or a step's own pause. */
  paused: { kind: 'operator'; by: string; at: string; reason: string | null; acknowledgedAt: string } | { kind: 'step'; step: number; since: string; until: string | null } | null;
  /** The last few controls, oldest first. */
  recent: ControlLine[];
  /** The rollout is over: a control never answered was not acted on. */
  over: boolean;
}

const SHOWN = 5;

export function gatesView(record: RolloutRecord): GatesView | null {
  const state = record.controls;
  if (!state) return null;
  const running = !FINAL_PHASES.includes(record.phase);
  let paused: GatesView['paused'] = null;
  if (running && state.paused) {
    paused = { kind: 'operator', by: state.paused.by, at: state.paused.at, reason: state.paused.reason ?? null, acknowledgedAt: state.paused.acknowledgedAt };
  } else if (running && state.stepPause) {
    paused = { kind: 'step', step: state.stepPause.stepIndex + 1, since: state.stepPause.since, until: state.stepPause.until };
  }
  const recent = state.log.slice(-SHOWN).map((c) => ({
    kind: c.kind,
    by: c.by,
    at: c.at,
    reason: c.reason ?? null,
    ack: c.ack ? { at: c.ack.at, outcome: c.ack.outcome, message: c.ack.message, weight: c.ack.weight } : null,
  }));
  if (!paused && recent.length === 0) return null;
  return { paused, recent, over: !running };
}

/** The phase line's suffix while paused. */
export function pausedWords(view: GatesView | null): string {
  const p = view?.paused;
  if (!p) return '';
  if (p.kind === 'operator') return ` · PAUSED by ${p.by} at ${p.at}${p.reason ? ` (${p.reason})` : ''}; checks continue`;
  return ` · PAUSED (step ${p.step}'s pause since ${p.since}${p.until ? `, until ${p.until}` : ', until `canary promote`'}); checks continue`;
}

/** What moves a paused rollout on, for the `next:` line; null when not paused. */
export function pausedNext(view: GatesView | null, ctx: { target: string; namespace: string }): string | null {
  const p = view?.paused;
  if (!p) return null;
  if (p.kind === 'operator') return `paused by ${p.by}: checks continue (a breach still rolls back); \`canary resume ${ctx.target} -n ${ctx.namespace}\` moves it forward, \`canary promote ${ctx.target} -n ${ctx.namespace}\` moves on now`;
  const until = p.until ? `at ${p.until}, or sooner with` : 'with';
  return `step ${p.step} passed its checks and waits: it moves on ${until} \`canary promote ${ctx.target} -n ${ctx.namespace}\` (\`--full\` skips to the promotion); checks continue`;
}

export function renderGates(view: GatesView | null): string[] {
  if (!view || view.recent.length === 0) return [];
  return [
    '  controls:',
    ...view.recent.map((c) => {
      const why = c.reason ? ` (${c.reason})` : '';
      const unanswered = view.over ? 'not acted on: the rollout ended first' : 'not acknowledged yet';
      const answer = c.ack ? `${c.ack.outcome === 'applied' ? 'acknowledged' : 'REFUSED'} at ${c.ack.at} (at ${c.ack.weight}%): ${c.ack.message}` : unanswered;
      return `    ${controlWords(c.kind)} by ${c.by} at ${c.at}${why}: ${answer}`;
    }),
  ];
}
