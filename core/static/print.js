// Buttons marked data-print print the page (no inline script: the CSP allows scripts from this site only).
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
