// What a metric preset is: the queries that measure one data plane, and how to tell its sides apart.
// Its own module so the per-data-plane presets can name the type without importing the registry.

export interface Preset {
  /** Label matchers that tell this side's traffic apart. */
  selectors: { canary: string; stable: string };
  queries: Record<string, string>;
  /**
   * How many of the histogram's units make one second, when the data plane's histogram is not in
   * seconds: a `latencyBuckets` answer's `le` ÷ this = seconds (Envoy's milliseconds: 1000).
   * Absent means 1.
   */
  latencyBucketsPerSecond?: number;
}
