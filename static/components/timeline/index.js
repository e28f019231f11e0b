// Streamlit runs this module (an inline blob); the player itself is a real module served by the app, so it
// can import lib/ and its own helpers, and stays one player per mount across reruns.
export default async function (component) {
  try {
    // A blob module has no base URL of its own: resolve the path against the page's.
    const { render } = await import(new URL(component.data.modules.player, window.location.href).href);
    return render(component);
  } catch (error) {
    console.error("timeline player:", error);
    const label = component.parentElement.querySelector(".tl-label");
    if (!label) return;
    label.textContent = `could not show the timeline: ${error.message}`;
    label.classList.add("tl-error");
  }
}
