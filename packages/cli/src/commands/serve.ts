// `signet serve`: runs the runtime from a data directory until SIGTERM or SIGINT, then drains and exits.
import type { Command } from "commander";
import { createRuntime, loadConfig } from "@signet/runtime";
import { DEFAULT_DATA_DIR } from "./init.js";

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("Run the Signet runtime (HTTPS by default) from a data directory")
    .option("--data-dir <dir>", "where state lives", DEFAULT_DATA_DIR)
    .option("--port <port>", "port to listen on (0 picks a free one)", (value) => Number.parseInt(value, 10))
    .option("--host <host>", "address to listen on")
    .option("--allow-insecure", "serve plaintext HTTP (development only; refused in production)", false)
    .action(async (options: { dataDir: string; port?: number; host?: string; allowInsecure: boolean }) => {
      const config = loadConfig({
        dataDir: options.dataDir,
        overrides: {
          ...(options.port === undefined ? {} : { port: options.port }),
          ...(options.host === undefined ? {} : { host: options.host }),
          ...(options.allowInsecure ? { allowInsecure: true } : {}),
        },
      });
      const runtime = await createRuntime(config);
      const shutdown = (signal: string) => {
        runtime.logger.info({ signal }, "shutting down: draining in-flight requests");
        const timer = setTimeout(() => {
          runtime.logger.error("shutdown timed out; exiting");
          process.exit(1);
        }, config.server.shutdownTimeoutMs);
        timer.unref();
        runtime.stop().then(
          () => {
            runtime.logger.info("stopped");
            process.exitCode = 0;
          },
          (error: unknown) => {
            runtime.logger.error({ err: error }, "error during shutdown");
            process.exitCode = 1;
          },
        );
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
      await runtime.start();
    });
}
