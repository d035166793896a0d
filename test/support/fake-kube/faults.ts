// Scripted failures: each fault matches requests by method and path and fires a number of times,
// in the order the faults were injected.

export type FaultSpec = {
  /** GET, PATCH, ... (any when omitted). */
  method?: string;
  /** A substring of the URL path, or a RegExp tested against it (any when omitted). */
  pathPattern?: string | RegExp;
  /** How many matching requests the fault hits; default 1, Infinity for "stays down". */
  times?: number;
} & (
  | { kind: 'status'; code: number; message?: string }
  | { kind: '429'; retryAfterSeconds?: number }
  | { kind: 'latency'; ms: number }
  /** Served normally once `until` resolves: a request held in flight for as long as the test decides. */
  | { kind: 'hold'; until: Promise<unknown> }
  | { kind: 'reset' }
  /** Runs `run` (e.g. another client's write, through FakeKube.put) just before the request is served as usual. */
  | { kind: 'before'; run: () => void }
);

export interface FaultHandle {
  /** Requests this fault has hit so far. */
  readonly hits: number;
  readonly remaining: number;
  clear(): void;
}

interface ActiveFault {
  spec: FaultSpec;
  remaining: number;
  hits: number;
}

export class FaultPlan {
  private faults: ActiveFault[] = [];

  add(spec: FaultSpec): FaultHandle {
    const fault: ActiveFault = { spec, remaining: spec.times ?? 1, hits: 0 };
    this.faults.push(fault);
    const plan = this;
    return {
      get hits() {
        return fault.hits;
      },
      get remaining() {
        return fault.remaining;
      },
      clear() {
        plan.faults = plan.faults.filter((f) => f !== fault);
      },
    };
  }

  clear(): void {
    this.faults = [];
  }

  /** The fault that hits this request, if any, counted as used. */
  take(method: string, path: string): FaultSpec | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && applies(f.spec, method, path));
    if (!fault) return undefined;
    fault.remaining -= 1;
    fault.hits += 1;
    return fault.spec;
  }
}

function applies(spec: FaultSpec, method: string, path: string): boolean {
  if (spec.method && spec.method.toUpperCase() !== method.toUpperCase()) return false;
  if (spec.pathPattern === undefined) return true;
  return typeof spec.pathPattern === 'string' ? path.includes(spec.pathPattern) : spec.pathPattern.test(path);
}
