// Clicks through Gatehouse's sign-in pages in Debian's Chromium (headless), for
// tests/browser_pages.rs. Never downloads a browser: playwright-core drives /usr/bin/chromium.
//
//   node journeys.mjs '<config JSON>'
//
// Config: { journey, chromium, artifacts, gatehouse, slug, tenant, ssoLabel, appUrl, email,
// idpLogin }. `journey` is one of email-code, email-link, sso, sso-required, self-check.
//
// Standard output carries JSON lines. When a journey needs the sign-in mail it prints
// {"need":"mail","to":EMAIL} and reads one line {"code":..,"link":..} from standard input.
// It ends with {"result":{..}} (exit 0) or {"error":"..",..} (exit 1). Each result lists the
// pages seen (with their screenshot and the problems found on them), console errors, failed
// requests, Gatehouse responses of 400 or more that no step expected, the session the browser
// ended with, and its session cookie. Diagnostics go to standard error.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2] ?? '{}');
const STEP_TIMEOUT = 15_000;
const VIEWPORT = { width: 1024, height: 720 };
const NARROW = { width: 360, height: 720 };
// The flags Debian's Chromium needs to run headless as root on a machine without a display,
// and no traffic of its own (updates, sync, component downloads).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

// Words and marks that must never reach a person: template syntax left unrendered, values
// that were never filled in, Rust's Debug output, and markup shown as text.
const RAW_MARKERS = [
  [/\{\{|\}\}|\{%|%\}|<%|%>|\$\{/, 'template marker'],
  [/\bundefined\b|\[object Object\]|\bNaN\b|\bnull\b/, 'unfilled value'],
  [/\b(?:Some|None|Ok|Err)\(|\b[A-Z][A-Za-z]+Error\b|panicked|\.rs:\d+/, 'Rust debug text'],
  [/<\/?[a-z][a-z0-9]*[\s>/]|&(?:lt|gt|amp|quot|#\d+|#x[0-9a-f]+);/i, 'markup shown as text'],
];

// The error statuses a step may expect, as Chromium names them in its console.
const STATUS_TEXT = { 400: 'Bad Request', 403: 'Forbidden' };

// ---------------------------------------------------------------------------------------------
// Talking to the Rust side

const stdinLines = [];
const stdinWaiters = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const waiter = stdinWaiters.shift();
  if (waiter) {
    waiter(line);
  } else {
    stdinLines.push(line);
  }
});

function say(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function nextLine() {
  if (stdinLines.length) {
    return Promise.resolve(stdinLines.shift());
  }
  return new Promise((resolve) => stdinWaiters.push(resolve));
}

/** The code and link of the sign-in mail to `to`, read by the test from its SMTP server. */
async function mailTo(to) {
  say({ need: 'mail', to });
  const answer = JSON.parse(await nextLine());
  if (!answer.code || !answer.link) {
    throw new Error(`the test sent no code or link for ${to}: ${JSON.stringify(answer)}`);
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------
// One browser tab with its bookkeeping

class Tab {
  constructor(page, name) {
    this.page = page;
    this.name = name;
    this.pages = [];
    this.consoleErrors = [];
    this.failedRequests = [];
    this.badResponses = [];
    this.documentStatus = null;
    this.documentUrl = null;
    this.seq = 0;
    const origin = new URL(config.gatehouse ?? 'http://invalid.test').origin;
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on('console', (message) => {
      // Requests this script blocks on purpose (the web fonts of the IdP's page) are listed
      // under failed requests; Chromium's console line about each is not a page error.
      if (message.type() === 'error' && !message.text().includes('ERR_BLOCKED_BY_CLIENT')) {
        this.consoleErrors.push({ page: page.url(), text: message.text(), expected: false });
      }
    });
    page.on('pageerror', (error) => {
      this.consoleErrors.push({
        page: page.url(),
        text: `uncaught: ${error.message}`,
        expected: false,
      });
    });
    page.on('requestfailed', (request) => {
      this.failedRequests.push({
        url: request.url(),
        page: page.url(),
        error: request.failure()?.errorText ?? 'failed',
        // To Gatehouse, or from one of its pages.
        gatehouse: request.url().startsWith(`${origin}/`) || page.url().startsWith(`${origin}/`),
      });
    });
    page.on('response', (response) => {
      const request = response.request();
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
        this.documentStatus = response.status();
        this.documentUrl = response.url();
      }
      if (response.url().startsWith(`${origin}/`) && response.status() >= 400) {
        this.badResponses.push({
          url: response.url(),
          status: response.status(),
          document: request.isNavigationRequest(),
          expected: false,
        });
      }
    });
  }

  /**
   * Runs `action` (a click, a form submit, a goto) and waits until the tab shows a new
   * document and it has loaded.
   */
  async navigate(action) {
    const committed = this.page.waitForEvent('framenavigated', {
      predicate: (frame) => frame === this.page.mainFrame(),
    });
    await action();
    await committed;
    await this.page.waitForLoadState('load');
  }

  /**
   * Records the page now shown: checks its heading and document status, takes a full-page
   * screenshot, and (for Gatehouse's own pages) runs the text and form checks.
   */
  async visit(label, { heading, status = 200, gatehousePage = true, json = false } = {}) {
    const url = this.page.url();
    if (heading) {
      await this.page.getByRole('heading', { level: 1, name: heading }).waitFor();
    }
    this.seq += 1;
    const file = join(config.artifacts, `${String(this.seq).padStart(2, '0')}-${label}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    const problems = [];
    if (this.documentStatus !== status) {
      problems.push(`document status ${this.documentStatus}, expected ${status}`);
    } else if (status >= 400) {
      // The step expected this answer (a wrong code, a refusal): neither it nor Chromium's
      // console line about its status is a failure.
      for (const bad of this.badResponses) {
        if (bad.document && bad.url === this.documentUrl && bad.status === status) {
          bad.expected = true;
        }
      }
      const line = `Failed to load resource: the server responded with a status of ${status} (${
        STATUS_TEXT[status]})`;
      for (const error of this.consoleErrors) {
        if (error.page === this.documentUrl && error.text === line) {
          error.expected = true;
        }
      }
    }
    let narrow = null;
    if (gatehousePage && !json) {
      problems.push(...(await pageProblems(this.page)));
      // The same page on a phone: readable without scrolling sideways.
      narrow = file.replace(/\.png$/, '-narrow.png');
      await this.page.setViewportSize({ width: NARROW.width, height: NARROW.height });
      await this.page.screenshot({ path: narrow, fullPage: true });
      const overflow = await this.page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      if (overflow > 0) {
        problems.push(`${NARROW.width} pixels wide, the page scrolls ${overflow} pixels sideways`);
      }
      await this.page.setViewportSize(VIEWPORT);
    }
    const text = (await this.page.locator('body').innerText()).trim();
    this.pages.push({
      label,
      url,
      status: this.documentStatus,
      screenshot: file,
      narrow_screenshot: narrow,
      problems,
      text,
    });
    log(`${this.name} ${label}: ${url} (${this.documentStatus})`);
    return text;
  }

  report() {
    return {
      pages: this.pages,
      console_errors: this.consoleErrors.filter((e) => !e.expected),
      failed_requests: this.failedRequests,
      unexpected_responses: this.badResponses.filter((r) => !r.expected),
    };
  }
}

/** What is wrong with the Gatehouse page now shown, as plain sentences (none: empty list). */
async function pageProblems(page) {
  const found = await page.evaluate(() => {
    const problems = [];
    const visible = (el) => {
      const style = window.getComputedStyle(el);
      const box = el.getBoundingClientRect();
      return style.visibility !== 'hidden' && style.display !== 'none'
        && box.width > 0 && box.height > 0;
    };
    const describe = (el) => `<${el.tagName.toLowerCase()}${el.name ? ` name="${el.name}"` : ''}${
      el.id ? ` id="${el.id}"` : ''}>`;

    if (!document.documentElement.lang) {
      problems.push('the html element has no lang');
    }
    if (!document.title.trim()) {
      problems.push('the page has no title');
    }
    const h1s = document.querySelectorAll('h1');
    if (h1s.length !== 1) {
      problems.push(`${h1s.length} h1 headings, expected one`);
    }
    // Every control a person fills in has a label (a <label for>, a wrapping label, or ARIA).
    for (const el of document.querySelectorAll('input, select, textarea')) {
      const type = (el.getAttribute('type') ?? 'text').toLowerCase();
      if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) {
        continue;
      }
      const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
        || el.getAttribute('aria-label')?.trim()
        || (el.getAttribute('aria-labelledby') ?? '').split(/\s+/)
          .some((id) => document.getElementById(id)?.textContent.trim());
      if (!labelled) {
        problems.push(`${describe(el)} has no label`);
      }
      if (!el.name) {
        problems.push(`${describe(el)} has no name, so its form does not send it`);
      }
    }
    // Every button and link says what it does.
    for (const el of document.querySelectorAll('button, a, input[type=submit]')) {
      const name = (el.textContent || el.value || el.getAttribute('aria-label') || '').trim();
      if (!name) {
        problems.push(`a ${el.tagName.toLowerCase()} without text`);
      }
      if (el.tagName === 'A' && !el.getAttribute('href')) {
        problems.push(`the link "${name}" goes nowhere`);
      }
    }
    for (const form of document.querySelectorAll('form')) {
      if (!form.querySelector('button, input[type=submit]')) {
        problems.push('a form without a submit button');
      }
    }
    for (const img of document.querySelectorAll('img:not([alt])')) {
      problems.push(`an image without alt: ${img.src}`);
    }
    // Errors are announced, visible, and plain sentences.
    for (const el of document.querySelectorAll('[role=alert], .error')) {
      if (!visible(el) || !el.textContent.trim()) {
        problems.push('an error element that shows nothing');
      }
      // A link or an emphasis may sit in the sentence; nothing else.
      const inline = ['A', 'CODE', 'EM', 'STRONG'];
      if ([...el.querySelectorAll('*')].some((child) => !inline.includes(child.tagName))) {
        problems.push(`an error with markup inside: ${el.innerHTML}`);
      }
    }
    // Nothing sticks out of the card (a long address, a long name).
    const card = document.querySelector('main')?.getBoundingClientRect();
    for (const el of document.querySelectorAll('main *')) {
      const box = el.getBoundingClientRect();
      if (card && visible(el) && (box.right > card.right + 1 || box.left < card.left - 1)) {
        problems.push(`${describe(el)} sticks out of the page's card`);
        break;
      }
    }
    return problems;
  });
  const text = await page.locator('body').innerText();
  for (const [pattern, what] of RAW_MARKERS) {
    const match = text.match(pattern);
    if (match) {
      found.push(`${what} in the visible text: ${JSON.stringify(match[0])}`);
    }
  }
  return found;
}

function log(line) {
  process.stderr.write(`${line}\n`);
}

/** A link or a button with this accessible name (the choice page may use either). */
function action(page, name) {
  return page.getByRole('link', { name, exact: true })
    .or(page.getByRole('button', { name, exact: true }));
}

/** The form that has a submit button named `buttonName`. */
function formWith(page, buttonName) {
  return page.locator('form').filter({ has: page.getByRole('button', { name: buttonName }) });
}

// ---------------------------------------------------------------------------------------------
// Journeys

const tenantPage = () => `${config.gatehouse}/${config.slug}`;
const signInHeading = () => `Sign in to ${config.tenant}`;

async function choicePage(tab) {
  await tab.navigate(() => tab.page.goto(tenantPage()));
  const text = await tab.visit('choice', { heading: signInHeading() });
  for (const name of [`Sign in with ${config.ssoLabel}`, 'Sign in with Gatehouse']) {
    if (!(await action(tab.page, name).first().isVisible())) {
      throw new Error(`the choice page has no visible "${name}":\n${text}`);
    }
  }
}

async function requestCode(tab, email) {
  await choicePage(tab);
  await tab.navigate(() => action(tab.page, 'Sign in with Gatehouse').first().click());
  await tab.visit('standard-login', { heading: signInHeading() });
  const form = formWith(tab.page, 'Email me a code');
  await form.getByLabel('Email address').fill(email);
  await tab.navigate(() => form.getByRole('button', { name: 'Email me a code' }).click());
}

async function codeSentPage(tab, email) {
  const text = await tab.visit('code-sent', { heading: 'Check your email' });
  if (!text.includes(email)) {
    throw new Error(`the code page does not name ${email}:\n${text}`);
  }
}

async function enterCode(tab, code) {
  const form = formWith(tab.page, signInHeading());
  await form.getByLabel('Code', { exact: true }).fill(code);
  await tab.navigate(() => form.getByRole('button', { name: signInHeading() }).click());
}

/**
 * After a form post that signs in or picks a connection, Gatehouse answers with a page that
 * moves on by itself (a redirect would be blocked by the form page's form-action 'self' once it
 * leaves Gatehouse's origin). Waits until the browser has arrived at a URL starting with
 * `target` and it has loaded.
 */
async function arrive(tab, target) {
  await tab.page.waitForURL((url) => url.href.startsWith(target), { waitUntil: 'load' });
}

async function idpLogin(tab) {
  await tab.visit('idp-login', { gatehousePage: false });
  const page = tab.page;
  if (!page.url().startsWith(config.idpOrigin)) {
    throw new Error(`expected the IdP's login page at ${config.idpOrigin}, got ${page.url()}`);
  }
  await page.locator('input[name="login"]').fill(config.idpLogin);
  await page.locator('input[name="password"]').fill('any password');
  await tab.navigate(() => page.getByRole('button', { name: 'Sign-in' }).click());
  if (page.url().startsWith(config.idpOrigin)) {
    // oidc-provider asks for consent only when a grant is missing; press on if it does.
    await tab.visit('idp-consent', { gatehousePage: false });
    await tab.navigate(() => page.getByRole('button', { name: 'Continue' }).click());
  }
}

/**
 * The tenant's app URL is Gatehouse's session API (as in the README's quickstart), so landing
 * there shows who the browser is signed in as.
 */
async function landOnApp(tab) {
  if (tab.page.url() !== config.appUrl) {
    throw new Error(`expected to land on the app ${config.appUrl}, got ${tab.page.url()}:\n${
      await tab.page.locator('body').innerText()}`);
  }
  const text = await tab.visit('signed-in', { json: true });
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`the app URL did not show the session as JSON:\n${text}`);
  }
}

const journeys = {
  // Choice page, "Sign in with Gatehouse", email, a wrong code (its error), the right code.
  async 'email-code'(tab) {
    await requestCode(tab, config.email);
    await codeSentPage(tab, config.email);
    const { code } = await mailTo(config.email);
    const wrong = code === '000000' ? '111111' : '000000';
    await enterCode(tab, wrong);
    const text = await tab.visit('wrong-code', { heading: 'Check your email', status: 400 });
    const alert = (await tab.page.getByRole('alert').innerText()).trim();
    if (!/^That code is not right\. \d tries? left\.$/.test(alert)) {
      throw new Error(`the wrong code's error is not the sentence expected: ${
        JSON.stringify(alert)}\n${text}`);
    }
    await enterCode(tab, code);
    await arrive(tab, config.appUrl);
    return landOnApp(tab);
  },

  // The email code for a tenant whose app is on another origin: the browser must get there.
  async 'email-code-elsewhere'(tab) {
    await requestCode(tab, config.email);
    await codeSentPage(tab, config.email);
    const { code } = await mailTo(config.email);
    await enterCode(tab, code);
    await arrive(tab, config.appUrl);
    return { landed: tab.page.url(), status: tab.documentStatus };
  },

  // Home-realm discovery: a member's address typed on the choice page leads to the IdP of
  // the connection that owns its domain (another origin), and back signed in.
  async discover(tab) {
    await choicePage(tab);
    const form = tab.page.locator('form#discover');
    await form.getByLabel('Work email address').fill(config.email);
    await tab.navigate(() => form.getByRole('button', { name: 'Continue' }).click());
    await arrive(tab, config.idpOrigin);
    await idpLogin(tab);
    return landOnApp(tab);
  },

  // The same start, then the link from the mail and its confirm button, in the same browser.
  async 'email-link'(tab) {
    await requestCode(tab, config.email);
    await codeSentPage(tab, config.email);
    const { link } = await mailTo(config.email);
    await tab.navigate(() => tab.page.goto(link));
    await tab.visit('confirm-link', { heading: signInHeading() });
    await tab.navigate(() => tab.page.getByRole('button', { name: signInHeading() }).click());
    await arrive(tab, config.appUrl);
    return landOnApp(tab);
  },

  // Choice page, the SSO button, the IdP's own login form, back signed in.
  async sso(tab) {
    await choicePage(tab);
    await tab.navigate(() => action(tab.page, `Sign in with ${config.ssoLabel}`).first().click());
    await idpLogin(tab);
    return landOnApp(tab);
  },

  // A member's address typed into standard login is sent to SSO with a plain explanation.
  async 'sso-required'(tab) {
    await requestCode(tab, config.email);
    const text = await tab.visit('sso-required', {
      heading: "Use your organisation's sign-in",
      status: 403,
    });
    if (!text.includes(config.ssoLabel) || !/quote this reference: [0-9a-f-]{36}/.test(text)) {
      throw new Error(`the page should name ${config.ssoLabel} and a reference:\n${text}`);
    }
    await tab.navigate(() => action(tab.page, `Sign in with ${config.ssoLabel}`).first().click());
    await idpLogin(tab);
    return landOnApp(tab);
  },

  // The page checks themselves, on a page built to fail each of them.
  async 'self-check'(tab) {
    await tab.page.setContent(`<!DOCTYPE html><html><head></head><body><main>
      <h1>One</h1><h1>Two</h1>
      <p>Hello {{ name }}, your code expires in undefined minutes.</p>
      <p class="error" role="alert">Invalid &amp;lt;email&amp;gt;: <b>EmailCodeRequestError</b></p>
      <form><input type="email" name="email"><input type="text"></form>
      <a>Sign in with Gatehouse</a><button></button>
      <div style="width:5000px">wide</div>
    </main></body></html>`);
    return { problems: await pageProblems(tab.page) };
  },
};

// ---------------------------------------------------------------------------------------------

async function main() {
  const run = journeys[config.journey];
  if (!run) {
    throw new Error(`unknown journey ${JSON.stringify(config.journey)}`);
  }
  mkdirSync(config.artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: config.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  let tab;
  try {
    const context = await browser.newContext({
      viewport: VIEWPORT,
      locale: 'en-GB',
    });
    // Only loopback is reachable in the tests: anything else (the web fonts the IdP's page
    // imports) is refused at once rather than waited for.
    await context.route((url) => !['127.0.0.1', 'localhost'].includes(url.hostname),
      (route) => route.abort('blockedbyclient'));
    tab = new Tab(await context.newPage(), config.journey);
    const outcome = await run(tab);
    const cookies = await context.cookies(config.gatehouse);
    const session = cookies.find((c) => c.name === 'gatehouse_session');
    say({
      result: {
        ...tab.report(),
        outcome,
        session_cookie: session
          ? { value: session.value, httpOnly: session.httpOnly, sameSite: session.sameSite }
          : null,
      },
    });
  } catch (error) {
    let failure = null;
    if (tab) {
      failure = join(config.artifacts, `${String(tab.seq + 1).padStart(2, '0')}-failure.png`);
      await tab.page.screenshot({ path: failure, fullPage: true }).catch(() => { failure = null; });
    }
    say({
      error: String(error?.stack ?? error),
      at: tab?.page.url() ?? null,
      failure_screenshot: failure,
      text: tab ? await tab.page.locator('body').innerText().catch(() => '') : '',
      ...(tab ? tab.report() : {}),
    });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
  process.exit();
}

await main();
