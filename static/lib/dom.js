// Small DOM helpers shared by the page's components.

// A new element with an optional class, appended to `parent` (if given), with optional text.
export function element(tag, className, parent, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  parent?.appendChild(e);
  return e;
}

// A component's render function that keeps one object per mount. Streamlit calls render again on every
// rerun with the same parent element; the object `build(component)` made on the first call is updated in
// place (`async update(component)`), so what the person sees survives a rerun, and disposed of
// (`dispose()`) when Streamlit unmounts the component. Reruns can send data faster than it loads: each
// update starts when the one before has ended, failed or not.
export function mountOnce(build) {
  const mounted = new WeakMap(); // parentElement -> { instance, pending }
  return (component) => {
    const host = component.parentElement;
    let entry = mounted.get(host);
    if (!entry) {
      entry = { instance: build(component), pending: Promise.resolve() };
      mounted.set(host, entry);
    }
    entry.pending = entry.pending.catch(() => {}).then(() => entry.instance.update(component));
    return () => {
      entry.instance.dispose();
      mounted.delete(host);
    };
  };
}
