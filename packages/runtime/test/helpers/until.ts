// Bounded waiting for a condition that another process or instance makes true.

/**
 * Resolves once `condition()` holds, polling every 20 ms; rejects naming `what` after `timeoutMs`.
 *
 * Example: `await until(() => b.runtime.registry.hasAgent("alice"), "B to learn of alice")`.
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
