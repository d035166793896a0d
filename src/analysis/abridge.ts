// PromQL as a person reads it in a terminal. The presets' window counts run to about 1 KB a query
// (the counter's rise from its last real sample, resets, series born in the window, gaps), and a
// rollback's evidence printed four of them. The terminal shows what a query counts, with its
// first series selector; `--verbose`, `-o json`, the job summary and the record keep the full text.

/** Queries up to this long are shown as they are. */
const SHORT = 160;

export function abridgeQuery(promql: string): string {
  if (promql.length <= SHORT) return promql;
  const selector = promql.match(/[a-zA-Z_:][a-zA-Z0-9_:]*\{[^{}]*\}/)?.[0];
  const outer = promql.match(/^[a-z_]+(?: by \([^)]*\))?/)?.[0] ?? '';
  // The window: what `offset` looks back by in a window count, else the first range.
  const windowMatch = promql.match(/ offset (\d+(?:ms|s|m|h|d))/) ?? promql.match(/\[(\d+(?:ms|s|m|h|d))\]/);
  const what = promql.includes('last_over_time(') && promql.includes(' offset ') ? 'window count of' : promql.startsWith('histogram_quantile') ? 'quantile of' : '';
  const inner = [what, selector ?? '…'].filter(Boolean).join(' ');
  const window = windowMatch ? ` over ${windowMatch[1]}` : '';
  return `${outer ? `${outer}(` : ''}${inner}${window}${outer ? ')' : ''}  [${promql.length} chars; full PromQL with --verbose or -o json]`;
}
