/* Click a character, see why (lstmviz/app/why.py): a click on a character of a painted panel
   that a why box lists (its data-why-panels) puts the character's position in the URL
   (why=POS); a click on the same character again, or beside the characters, takes it out.
   The server's answer comes back as contributions, one per character before the click,
   drawn as a bar below each character (red raises the unit, blue lowers it; height and
   darkness by size), so the activation colours stay as they are. The painter draws them
   again whenever it paints the panel anew (paint() calls lstmvizWhyShade). */
(function () {
  var BAR_PX = 5;  // the tallest bar: it fits in the gap between two lines of a panel with bars (.why-on)
  var FAINT = 0.02;  // contributions under this share of the largest get no bar
  function clear(panel) {
    (panel.lstmvizShaded || []).forEach(function (span) {
      span.style.boxShadow = "";
      span.style.outline = "";
      span.removeAttribute("title");
    });
    panel.lstmvizShaded = [];
    var was = panel.lstmvizClicked;
    panel.lstmvizClicked = null;
    keepInPlace(panel, was && panel.contains(was) ? was : null, function () { panel.classList.remove("why-on"); });
  }
  /* Change the panel's line spacing (room for the bars) with ``span`` where it was on the screen. */
  function keepInPlace(panel, span, change) {
    var anchor = span;
    var before = anchor ? anchor.getBoundingClientRect().top : 0;
    change();
    if (anchor) { panel.scrollTop += anchor.getBoundingClientRect().top - before; }
  }
  function draw(panel) {
    clear(panel);
    var why = panel.lstmvizWhy, d = panel.lstmvizData;
    if (!why || !d) { return; }
    var most = 0;
    why.values.forEach(function (v) { most = Math.max(most, Math.abs(v)); });
    for (var j = 0; j < why.values.length; j++) {
      var span = panel.children[why.start + j - d.start], v = why.values[j], a = most ? Math.abs(v) / most : 0;
      if (!span || !span.classList.contains("ch")) { continue; }
      span.title = "contribution to " + why.target + ": " + (v >= 0 ? "+" : "") + v.toFixed(4);
      panel.lstmvizShaded.push(span);
      if (a < FAINT) { continue; }
      a = Math.sqrt(a);  // a square root: the smaller ones stay visible beside the largest
      var rgb = v > 0 ? "178, 24, 43" : "33, 102, 172";
      span.style.boxShadow = "0 " + Math.max(1, Math.round(BAR_PX * a)) + "px 0 0 rgba(" + rgb + ", " + (0.35 + 0.65 * a).toFixed(2) + ")";
    }
    var clicked = panel.children[why.pos - d.start];
    keepInPlace(panel, clicked, function () { panel.classList.add("why-on"); });
    if (clicked) {
      clicked.style.outline = "2px solid #222";
      panel.lstmvizClicked = clicked;
      panel.lstmvizShaded.push(clicked);
    }
  }
  /* The server's answer: draw it on its panel, and take any earlier one off every panel. */
  function shade(data) {
    document.querySelectorAll(".text-panel").forEach(function (panel) {
      if (panel.lstmvizWhy && (!data || panel.id !== data.panel)) { panel.lstmvizWhy = null; clear(panel); }
    });
    var panel = data && document.getElementById(data.panel);
    if (panel) {
      panel.lstmvizWhy = data;
      draw(panel);
    }
    return data ? data.target + "@" + data.pos : "";
  }
  document.addEventListener("click", function (event) {
    var panel = event.target.closest && event.target.closest(".text-panel");
    if (!panel || !panel.lstmvizData || !document.querySelector('[data-why-panels~="' + panel.id + '"]')) { return; }
    var selection = window.getSelection();
    if (selection && !selection.isCollapsed) { return; }  // a selection (for Discover), not a click
    var span = event.target.closest(".ch"), query = new URLSearchParams(window.location.search);
    if (span && !panel.lstmvizData.clickable) { return; }
    var pos = span ? String(panel.lstmvizData.start + Number(span.dataset.i)) : null;
    if (pos === null || query.get("why") === pos) { query.delete("why"); } else { query.set("why", pos); }
    window.dash_clientside.set_props("url", {search: "?" + query.toString()});
  });
  window.lstmvizWhyShade = draw;
  window.dash_clientside = Object.assign({}, window.dash_clientside, { lstmvizWhy: { shade: shade } });
})();
