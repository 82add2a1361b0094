// Click a figure or diagram to open it on its own, full size (on a phone a diagram scaled to
// the column is too small to read). Images already inside a link are left alone.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.src;
    link.title = "Open full size";
    link.className = "enlarge";
    img.replaceWith(link);
    link.appendChild(img);
  }
});
