// Streamlit runs this module (an inline blob); the Inside page's views are a real module served by the app.
export default async function (component) {
  try {
    const { render } = await import(new URL(component.data.modules.inside, window.location.href).href);
    return render(component);
  } catch (error) {
    console.error(error);
    const note = document.createElement("div");
    note.className = "status error";
    note.textContent = `The in-page views could not start: ${error.message}`;
    component.parentElement.appendChild(note);
  }
}
