/** Debian's Chromium for the end-to-end tests, started headless with nothing reaching outside. */
import { chromium, type Browser } from 'playwright-core';

/** Without the background-networking flags Chromium keeps calling hosts this network refuses. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}
