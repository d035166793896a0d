// What `canary doctor` says about one thing a rollout depends on: a verdict, the evidence, and
// the fix. Plain data, so the same findings print as lines, as JSON, and in tests.

export type DoctorVerdict = 'ok' | 'warn' | 'fail';

export type DoctorArea = 'objects' | 'access' | 'router' | 'prometheus';

export interface Finding {
  area: DoctorArea;
  /** A short name of the check, stable across releases so CI can match on it. */
  check: string;
  verdict: DoctorVerdict;
  /** What was found, with the names and numbers that decided. */
  detail: string;
  /** What to change, when the verdict is not ok. */
  fix?: string;
}

export function ok(area: DoctorArea, check: string, detail: string): Finding {
  return { area, check, verdict: 'ok', detail };
}

export function warn(area: DoctorArea, check: string, detail: string, fix: string): Finding {
  return { area, check, verdict: 'warn', detail, fix };
}

export function fail(area: DoctorArea, check: string, detail: string, fix: string): Finding {
  return { area, check, verdict: 'fail', detail, fix };
}

/** A rollout can work unless some finding fails; warnings say where it will be less certain. */
export function canWork(findings: readonly Finding[]): boolean {
  return findings.every((f) => f.verdict !== 'fail');
}
