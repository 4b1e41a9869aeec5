// `npm test` runs this before anything else: say now, not after minutes of lint and type-checks, what the
// browser suite needs. Without Chromium plain `npm test` skips that suite (and says so); CI=true fails.
import { BROWSER_REQUIRED, chromiumFound, MISSING_CHROMIUM } from './browser.js';

if (!chromiumFound()) {
  if (BROWSER_REQUIRED) {
    console.error(`npm test: ${MISSING_CHROMIUM}\nCI=true: failing instead of skipping the browser suite.`);
    process.exit(1);
  }
  console.warn(`npm test: ${MISSING_CHROMIUM}\nThe browser suite will be SKIPPED; everything else runs.\n`);
}
