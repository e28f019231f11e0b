// Streamlit runs this module (an inline blob); the drawing pad itself is a real module served by the app.
export default async function (component) {
  try {
    const { render } = await import(new URL(component.data.modules.digit, window.location.href).href);
    return render(component);
  } catch (error) {
    console.error(error);
    const note = document.createElement("div");
    note.className = "status error";
    note.textContent = `The drawing pad could not start: ${error.message}`;
    component.parentElement.appendChild(note);
    component.setStateValue("support", { ok: false, missing: ["the page's modules"], error: String(error) });
  }
}
