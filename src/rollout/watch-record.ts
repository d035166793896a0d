import type { StableFigures, WatchResult } from '../analysis/stable-watch.js';

// What the rollout record keeps of the post-promotion watch: a handful of counts and the latest
// check, whatever the watch's length (the record must stay far below the API server's 1 MiB).

export interface WatchProgress {
  startedAt: string;
  endsAt: string;
  intervalMs: number;
  /** The image stable ran before the rollout (recorded at the start): what a breach sets it back to. */
  previousImage: string | null;
  /** The image promoted, which stable runs during the watch. */
  image: string;
  checks: number;
  passed: number;
  failed: number;
  inconclusive: number;
  /** Breaching checks in a row (an inconclusive check neither adds nor clears). */
  breachesInRow: number;
  failureLimit: number;
  latest?: { at: string; verdict: WatchResult['verdict']; figures: StableFigures; results: WatchResult[] };
  /** How the watch ended; absent while it runs. */
  result?: 'passed' | 'inconclusive' | 'rolled-back' | 'rolled-back-by-operator' | 'ended-early';
  /** Who set stable back, and why (the watch itself, or an operator). */
  rolledBackBy?: string;
}
