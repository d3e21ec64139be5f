// Jauge admin: copy buttons for the embed snippets, reload button for the banner preview.
document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-jauge-copy]");
  if (copy) {
    const box = document.getElementById(copy.dataset.jaugeCopy);
    let copied = false;
    try {
      await navigator.clipboard.writeText(box.value);
      copied = true;
    } catch (error) {
      // Insecure origin or no permission: fall back to the selection.
      box.focus();
      box.select();
      copied = document.execCommand && document.execCommand("copy");
    }
    copy.textContent = copied ? copy.dataset.done : copy.dataset.failed;
    return;
  }
  const reload = event.target.closest("[data-jauge-reload]");
  if (reload) {
    const frame = document.getElementById(reload.dataset.jaugeReload);
    frame.src = frame.src;
  }
});
