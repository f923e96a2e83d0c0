/**
 * Home Assistant's frontend in a real browser: Debian's Chromium (scripts/setup/65-chromium.sh),
 * headless, driven by playwright-core (which never downloads a browser of its own), on a fresh
 * profile. It may talk to Home Assistant and nothing else: every other request is refused
 * before it leaves (the frontend would fetch brand icons and the like from the internet).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { Owner } from "./hass.js";

export const CHROMIUM = "/usr/bin/chromium";

/** The flags Chromium runs with; only `host` (Home Assistant's address) resolves. */
export const chromiumFlags = (host: string): string[] => [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Every other host name resolves to nothing, whatever the routing rule below lets through.
  `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${host}`,
];

export interface Browser {
  page: Page;
  /** Requests refused because they were not for Home Assistant (what the frontend tried). */
  refused: string[];
  close(): Promise<void>;
}

export async function openBrowser(homeAssistantUrl: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "z2mha-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: chromiumFlags(new URL(homeAssistantUrl).hostname),
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
      locale: "en-GB",
      timezoneId: "UTC",
      colorScheme: "light",
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const origin = new URL(homeAssistantUrl).origin;
  const refused: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("data:") || url.startsWith("blob:") || new URL(url).origin === origin)
      return route.continue();
    refused.push(url);
    return route.abort("blockedbyclient");
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    refused,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The login page as a person fills it in; resolves once the frontend shows its sidebar. */
export async function logIn(page: Page, url: string, owner: Owner): Promise<void> {
  await page.goto(url);
  await page.locator("input[name=username]").fill(owner.username);
  await page.locator("input[name=password]").fill(owner.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("ha-sidebar").waitFor({ state: "visible", timeout: 60_000 });
}

// The page-side scripts are source text: a function handed to page.evaluate is serialized, and
// the TypeScript transform (tsx, vitest) adds helper calls to it that the page does not have.

/** Every text node's text that is visible, shadow roots included. */
const VISIBLE_TEXTS = `(() => {
  const texts = [];
  const visit = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      const parent = node.parentElement;
      if (text && parent && parent.checkVisibility({ visibilityProperty: true, opacityProperty: true }))
        texts.push(text);
      return;
    }
    if (node instanceof Element) {
      if (["SCRIPT", "STYLE", "TEMPLATE"].includes(node.tagName)) return;
      if (node.shadowRoot) visit(node.shadowRoot);
    }
    for (const child of node.childNodes) visit(child);
  };
  visit(document.body);
  return texts;
})()`;

/** Whether a spinner is still showing anywhere, shadow roots included. */
const BUSY = `(() => {
  const busy = (root) =>
    [...root.querySelectorAll("*")].some(
      (el) =>
        (["HA-SPINNER", "HA-CIRCULAR-PROGRESS"].includes(el.tagName) && el.checkVisibility()) ||
        (el.shadowRoot !== null && busy(el.shadowRoot)),
    );
  return busy(document);
})()`;

/**
 * The text a person sees on the page, one string per text node, shadow roots included (the
 * frontend is web components throughout, and innerText stops at the first shadow root).
 */
export function visibleTexts(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(VISIBLE_TEXTS);
}

/** Waits until the frontend has nothing left loading (spinners gone) and the page is still. */
export async function settle(page: Page): Promise<void> {
  await page.waitForLoadState("networkidle");
  await page.waitForFunction(`!${BUSY}`, undefined, { timeout: 30_000 });
  // Cards animate in; give them a moment after the last request.
  await page.waitForTimeout(1_000);
}
