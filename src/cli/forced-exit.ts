// What must still happen when the user insists on exiting now (a second SIGTERM/SIGINT): the
// running rollout gets a moment to record where it stopped, so `status` can tell the truth.

type Hook = () => Promise<void>;
const hooks = new Set<Hook>();

export function onForcedExit(hook: Hook): () => void {
  hooks.add(hook);
  return () => {
    hooks.delete(hook);
  };
}

/** Runs every hook, but never for longer than `timeoutMs`: the user asked to exit at once. */
export async function runForcedExitHooks(timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...hooks].map((hook) => hook())),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
