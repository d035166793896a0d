/** `checkout-20260115T100000Z`: readable, sortable, and unique per target at one-second resolution. */
export function rolloutIdFor(target: string, at: number): string {
  return `${target}-${new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}
