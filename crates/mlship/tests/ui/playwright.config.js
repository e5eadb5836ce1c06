// Playwright settings for the web UI tests, run by crates/mlship/tests/ui.rs (which starts the
// servers and passes their addresses in the environment). Debian's Chromium is launched by path:
// `playwright install` cannot download here.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: __dirname,
  testMatch: /.*\.spec\.js$/,
  timeout: 90_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: process.env.MLSHIP_UI_OUT || '/tmp/mlship-ui-results',
  use: {
    viewport: { width: 1280, height: 900 },
    // The pages' Content-Security-Policy forbids inline scripts; axe-core is injected as one.
    bypassCSP: true,
    launchOptions: {
      executablePath: process.env.MLSHIP_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
});
