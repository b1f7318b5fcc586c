import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/**
 * A request whose answer a panel shows. `data` is kept while a reload runs, so the page does not
 * flash or lose focus after every change; `error` is the last failure (cleared by the next success).
 */
export type Loaded<T> = { data: T | undefined; error: unknown; loading: boolean };

export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): [Loaded<T>, () => Promise<void>] {
  const [state, setState] = useState<Loaded<T>>({ data: undefined, error: undefined, loading: true });
  const sequence = useRef(0);
  const run = useCallback(async () => {
    const current = ++sequence.current;
    setState((previous) => ({ ...previous, loading: true }));
    try {
      const data = await load();
      if (current === sequence.current) setState({ data, error: undefined, loading: false });
    } catch (error) {
      if (current === sequence.current) setState((previous) => ({ data: previous.data, error, loading: false }));
    }
    // `load` is rebuilt each render; `deps` says when it means something new.
  }, deps);
  useEffect(() => {
    void run();
  }, [run]);
  return [state, run];
}
