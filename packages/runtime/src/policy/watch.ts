// Hot reload: watch the policy directory, reload after a quiet spell, swap only a policy that loads.
import { type FSWatcher, watch } from "node:fs";
import type { CompiledPolicy } from "./engine.js";
import { PolicyLoadError } from "./policy-error.js";
import { loadPolicyDirectory } from "./policy-file.js";
import type { PolicySource } from "./types.js";

export interface PolicyWatchOptions {
  /** Called with each policy that loads after a change. Swap it in (`LivePolicy.replace`). */
  readonly onChange: (policy: CompiledPolicy) => void;
  /** Called when a change does not load; the caller keeps the policy it had. */
  readonly onError: (error: PolicyLoadError) => void;
  /** Quiet time after the last change before reloading, so an editor's save is read once. Default 100 ms. */
  readonly debounceMs?: number;
  /** Rules from elsewhere (agent definitions), read at each reload. */
  readonly extraSources?: () => readonly PolicySource[];
}

/** A running watch. */
export interface PolicyWatcher {
  /** Reloads now, as a change would. */
  reload(): void;
  close(): void;
}

/**
 * Watches `dir` and reloads its policy when a file changes. A file that does not load leaves the
 * policy as it was and is reported through `onError`; fixing it reloads.
 *
 * Example:
 * ```ts
 * const live = new LivePolicy(loadPolicyDirectory(dir));
 * const watcher = watchPolicyDirectory(dir, { onChange: (p) => live.replace(p), onError: (e) => log.error(e.message) });
 * ```
 */
export function watchPolicyDirectory(dir: string, options: PolicyWatchOptions): PolicyWatcher {
  const debounceMs = options.debounceMs ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const reload = (): void => {
    timer = undefined;
    if (closed) return;
    let policy: CompiledPolicy;
    try {
      policy = loadPolicyDirectory(dir, options.extraSources?.() ?? []);
    } catch (error) {
      options.onError(
        error instanceof PolicyLoadError
          ? error
          : new PolicyLoadError([{ file: dir, message: `reload failed: ${(error as Error).message}` }]),
      );
      return;
    }
    options.onChange(policy);
  };
  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
    timer.unref();
  };

  // Watching the directory, not the files, sees files added, removed, and replaced by a rename.
  const watcher: FSWatcher = watch(dir, { persistent: false }, schedule);
  watcher.on("error", (error) => {
    options.onError(new PolicyLoadError([{ file: dir, message: `watch failed: ${error.message}` }]));
  });
  return {
    reload: () => {
      if (timer !== undefined) clearTimeout(timer);
      reload();
    },
    close: () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher.close();
    },
  };
}
