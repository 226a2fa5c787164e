// What has keyboard focus, and how its focus is drawn. The file input is invisible, so its
// label (the visible "Choose files" button) is the element whose outline counts.
() => {
  const el = document.activeElement;
  const shown = el.id === "file-input" ? document.querySelector("label[for=file-input]") : el;
  const style = getComputedStyle(shown);
  return {
    tag: el.tagName,
    id: el.id,
    cls: typeof el.className === "string" ? el.className : "",
    text: (el.textContent || "").trim().slice(0, 30),
    outline: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
  };
}
