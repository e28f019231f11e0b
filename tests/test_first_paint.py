"""What a newcomer sees first after ``make app``: the real navigation, never a list of file names, and a
note while the first run imports the libraries."""

from __future__ import annotations

from app.navigation import PAGES
from tests.browser import launch_chromium, shipped_dashboard

# Recorded from the first script the page runs: every change to the sidebar's navigation and whether the
# loading note is on screen at that moment.
RECORD = r"""
globalThis.paints = [];
new MutationObserver(() => {
    const nav = document.querySelector('[data-testid="stSidebarNav"]');
    const links = nav ? [...nav.querySelectorAll('a')].map(a => a.innerText.trim().split('\n').pop().trim()) : [];
    const loading = ((document.body && document.body.innerText) || '').includes('Loading the models and libraries');
    const last = globalThis.paints[globalThis.paints.length - 1];
    if (!last || last.links.join('|') !== links.join('|') || last.loading !== loading)
        globalThis.paints.push({links, loading});
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_first_paint_is_the_real_navigation_with_a_loading_note(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    titles = [title for _, title, _, _ in PAGES]
    with shipped_dashboard(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            tab.add_init_script(RECORD)
            tab.goto(url)
            tab.get_by_text("What does an auto-encoder learn?").wait_for(timeout=180_000)
            paints = tab.evaluate("globalThis.paints")
        finally:
            browser.close()
    navigations = [paint["links"] for paint in paints if paint["links"]]
    assert navigations, paints
    assert all(links == titles for links in navigations), navigations  # never the folder's file names
    # The note was on screen with the navigation already drawn, and is gone once the page is there.
    assert any(paint["loading"] and paint["links"] == titles for paint in paints), paints
    assert not paints[-1]["loading"]
