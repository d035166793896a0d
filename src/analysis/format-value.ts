import type { Unit } from './types.js';

/** Renders a metric value the way an operator reads it: 4.1%, 1.23s, 312 MiB, 0.25 cores. */
export function formatValue(value: number | null, unit: Unit): string {
  if (value === null) return 'n/a';
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'ratio':
      return `${round(value * 100, value * 100 < 10 ? 2 : 1)}%`;
    case 'seconds':
      return value < 1 ? `${round(value * 1000, 0)}ms` : `${round(value, 2)}s`;
    case 'bytes': {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let v = value;
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) {
        v /= 1024;
        i += 1;
      }
      return `${round(v, i === 0 ? 0 : 1)} ${units[i]}`;
    }
    case 'cores':
      return `${round(value, 3)} cores`;
    case 'count':
      return `${round(value, value < 100 ? 1 : 0)}`;
  }
}

function round(value: number, digits: number): string {
  return String(Number(value.toFixed(digits)));
}
