"""What every face is checked for in the browser (issue 8): text reaches 4.5:1 against its
background, every form field has a label, and everything works by keyboard (every control takes
focus from the Tab key, in document order, and shows that it has it at 3:1 or more)."""

from __future__ import annotations

from typing import Any

# Text against its effective background must reach 4.5:1 (WCAG AA); SVG labels have a halo.
LOW_CONTRAST_JS = """() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(",").map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg")) continue;
    if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.getBoundingClientRect().width === 0) continue;
    const a = lum(parse(style.color));
    const b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + " " + el.textContent.trim().slice(0, 30) + " " + ratio);
  }
  return bad;
}"""

# Every field has a label (or an aria-label / aria-labelledby that names something).
UNLABELLED_JS = """() => Array.from(
  document.querySelectorAll("input:not([type=hidden]), select, textarea")
).filter((e) => {
  const labelled = e.labels && Array.from(e.labels).some((l) => l.textContent.trim());
  const named = (e.getAttribute("aria-label") || "").trim();
  const by = (e.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
    .some((id) => (document.getElementById(id) || {textContent: ""}).textContent.trim());
  return !(labelled || named || by);
}).map((e) => e.name || e.id)"""

# Every control shown takes focus from the keyboard (no tabindex=-1 on a control, no positive
# tabindex reordering the page) and, focused, draws an outline or a shadow at 3:1 or more
# against what lies around it (WCAG 1.4.11). Run after a key press, so that focus() behaves as
# focus moved by the keyboard does (:focus-visible). SVG map links show focus by their stroke.
KEYBOARD_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(",").map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const ratio = (x, y) => {
    const a = lum(x), b = lum(y);
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const name = (el) => el.tagName + " " + (el.textContent.trim() || el.name || el.id || "")
    .slice(0, 30);
  const bad = [];
  const controls = "a[href], button, input:not([type=hidden]), select, textarea, summary, "
    + "[tabindex]";
  const before = document.activeElement;
  for (const el of document.querySelectorAll(controls)) {
    if (el.closest("svg") || el.disabled) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || (box.width === 0 && box.height === 0)) continue;
    if (el.tabIndex > 0) bad.push("tabindex above 0 (out of order): " + name(el));
    if (el.tabIndex < 0) { bad.push("not reachable by Tab: " + name(el)); continue; }
    el.focus();
    if (document.activeElement !== el) { bad.push("does not take focus: " + name(el)); continue; }
    const focused = getComputedStyle(el);
    const around = background(el.parentElement);
    const outline = focused.outlineStyle !== "none" && parseFloat(focused.outlineWidth) >= 2
      ? parse(focused.outlineColor) : null;
    const shadow = focused.boxShadow !== "none" ? parse(focused.boxShadow) : null;
    const seen = [outline, shadow].some((c) => c && c.a > 0.5 && ratio(c, around) >= 3);
    if (!seen) bad.push("focus not visible at 3:1: " + name(el));
  }
  if (before && before.focus) before.focus(); else document.activeElement.blur();
  return bad;
}"""


def assert_accessible(page: Any, name: str) -> None:
    """The page's text contrast, field labels and keyboard focus, as issue 8 asks."""
    for script, problem, keyboard in (
        (LOW_CONTRAST_JS, "text below 4.5:1", False),
        (UNLABELLED_JS, "fields without a label", False),
        (KEYBOARD_JS, "not usable by keyboard", True),
    ):
        if keyboard:
            page.keyboard.press("Shift")  # focus from now on is keyboard focus (:focus-visible)
        found = page.evaluate(script)
        assert found == [], f"{name}: {problem}: {found[:8]}"


def shot(page: Any, name: str) -> None:
    """A screenshot of the face (build/screenshots/ unless asked), after checking it (issue 8)."""
    from tests.e2e.conftest import screenshot

    assert_accessible(page, name)
    screenshot(page, name)
