// The parts of a Gateway API v1 HTTPRoute the router reads and writes (upstream v1.6.1 field names).

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: { type: string; [k: string]: unknown }[];
}

export interface HeaderMatch {
  type?: string;
  name: string;
  value: string;
}

export interface RouteMatch {
  path?: { type?: string; value?: string };
  headers?: HeaderMatch[];
  queryParams?: unknown[];
  method?: string;
}

export interface RouteRule {
  name?: string;
  matches?: RouteMatch[];
  filters?: { type: string; [k: string]: unknown }[];
  backendRefs?: BackendRef[];
  [k: string]: unknown;
}

export interface HttpRoute {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { parentRefs?: unknown[]; hostnames?: string[]; rules?: RouteRule[] };
  status?: { parents?: { parentRef?: Record<string, unknown>; controllerName?: string; conditions?: { type: string; status: string; reason?: string; message?: string; observedGeneration?: number }[] }[] };
}
