// Where the browser tests' Chromium is, and what to do when there is none. `npm test` runs
// test/preflight.ts first, so the notice comes before anything else; the browser suite skips itself
// (plain `npm test`) or fails (CI=true) on the same check.
import { accessSync, constants } from 'node:fs';
import { readEnv } from '@headbench/spec';

const env = readEnv(process.env);

/** HEADBENCH_CHROMIUM, else Debian's /usr/bin/chromium (the default). */
export const CHROMIUM = env.HEADBENCH_CHROMIUM;

export function chromiumFound(): boolean {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Under CI=true a missing browser is an error: CI must run every suite. */
export const BROWSER_REQUIRED = env.CI;

export const MISSING_CHROMIUM = `No Chromium at ${CHROMIUM}: the browser tests (test/web) need one.
  Debian/Ubuntu:  sudo apt-get install -y chromium
  macOS:          brew install --cask chromium
                  (or use Chrome: HEADBENCH_CHROMIUM="/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
  Elsewhere:      HEADBENCH_CHROMIUM=/path/to/chromium npm test`;
