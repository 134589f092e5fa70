// `npm run bench [-- SUITE...]`: runs the named suites, or all of them, and writes bench/results/.
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const suitesDir = fileURLToPath(new URL("./suites/", import.meta.url));
const available = readdirSync(suitesDir)
  .filter((file) => file.endsWith(".ts"))
  .map((file) => file.slice(0, -3))
  .sort();

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith("-"));
const unknown = requested.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`Unknown suite(s): ${unknown.join(", ")}. Available: ${available.join(", ")}`);
  process.exit(2);
}

let allHold = true;
for (const name of requested.length > 0 ? requested : available) {
  const module = (await import(`./suites/${name}.ts`)) as { run: () => Promise<boolean> };
  allHold = (await module.run()) && allHold;
}
// A missed target is reported, not fatal: benches inform, tests decide.
console.log(allHold ? "\nall targets hold" : "\nsome targets missed (see MISSED above)");
