// WCAG contrast ratio of the text of every visible element matching the given selectors,
// against the first opaque background behind it. Evaluated by test_text_contrast_meets_wcag_aa.
(selectors) => {
  const parse = (c) => {
    const rgb = c.match(/rgba?\(([^)]+)\)/);
    if (rgb) {
      const v = rgb[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [v[0] / 255, v[1] / 255, v[2] / 255, v.length > 3 ? v[3] : 1];
    }
    const srgb = c.match(/color\(srgb ([^)]+)\)/);
    if (srgb) {
      const v = srgb[1].split(/[ /]+/).filter(Boolean).map(Number);
      return [v[0], v[1], v[2], v[3] ?? 1];
    }
    return null;
  };
  const luminance = ([r, g, b]) => {
    const f = (x) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0.5) return c;
    }
    return [1, 1, 1, 1];
  };
  const out = [];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      if (!el.offsetParent) continue;
      const fg = parse(getComputedStyle(el).color);
      if (!fg) continue;
      const [hi, lo] = [luminance(fg), luminance(background(el))].sort((x, y) => y - x);
      out.push({ selector, text: el.textContent.trim().slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05) });
    }
  }
  return out;
}
