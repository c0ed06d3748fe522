/**
 * Debian's Chromium driven by playwright-core (never `npx playwright install`). sigma needs
 * WebGL2: SwiftShader (ANGLE's CPU backend) gives it to headless Chromium without a GPU.
 */
import fs from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
];

/**
 * Whether the browser tests can run. Outside CI a missing Chromium skips them; in CI (`CI` set,
 * as .ci/run does) it fails the run instead, so the UI tests are never skipped unnoticed.
 */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.CI)
    throw new Error(
      `Chromium is missing at ${CHROMIUM} (set CHROMIUM_PATH, or install Debian's chromium): ` +
        'CI must run the browser tests, not skip them',
    );
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
