// Streamlit runs this module (an inline blob); the explorer itself is a real module served by the app, so it
// can import its parts and stays one instance, with its decoders, across reruns.
export default async function (component) {
  try {
    // A blob module has no base URL of its own: resolve the path against the page's.
    const { render } = await import(new URL(component.data.modules.explorer, window.location.href).href);
    return render(component);
  } catch (error) {
    console.error(error);
    const note = document.createElement("div");
    note.className = "status error";
    note.textContent = `The in-page planes could not start: ${error.message}`;
    component.parentElement.appendChild(note);
    component.setStateValue("support", { ok: false, missing: ["the page's modules"], error: String(error) });
  }
}
