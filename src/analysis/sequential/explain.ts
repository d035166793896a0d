// Number formatting for the judges' plain-words explanations: rates as percentages, differences
// as signed points, confidence as a percentage without false precision.

export function percent(fraction: number): string {
  const value = fraction * 100;
  if (value === 0) return '0%';
  return `${Math.abs(value) >= 1 ? value.toFixed(1) : value.toFixed(2)}%`;
}

/** A difference of two rates in percentage points, signed: "+3.2 points". */
export function points(fraction: number): string {
  const value = fraction * 100;
  const digits = Math.abs(value) >= 1 || value === 0 ? 1 : 2;
  const text = value.toFixed(digits);
  return `${value >= 0 && !text.startsWith('-') ? '+' : ''}${text.replace('-', '−')} points`;
}

/** "3-point" for a margin of 0.03, "0.5-point" for 0.005. */
export function marginWords(fraction: number): string {
  const value = fraction * 100;
  return `${Number.isInteger(value) ? value.toFixed(0) : Number(value.toPrecision(2)).toString()}-point`;
}

export function confidenceWords(level: number): string {
  const value = level * 100;
  const text = Number.isInteger(value) ? value.toFixed(0) : Number(value.toFixed(1)).toString();
  return `${text}%`;
}

export function ratioWords(evidence: number): string {
  if (!Number.isFinite(evidence) || evidence >= 1e6) return 'over 1,000,000:1';
  if (evidence >= 10) return `${Math.round(evidence).toLocaleString('en-US')}:1`;
  if (evidence >= 1) return `${evidence.toFixed(1)}:1`;
  return `1:${(1 / Math.max(evidence, 1e-6)).toFixed(1)}`;
}

export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
