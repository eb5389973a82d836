/* Draws a neuron's details on the Neuron page from plain data sent by the server
   (lstmviz.app.neuron_page.details_data): the feature-score table and the context lists.
   Text goes in through textContent, never as HTML. */
(function () {
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function shown(s) { return s.replace(/\n/g, window.lstmvizCharacters.glyphs["\n"]); }  // one line (assets/characters.js)
  function signed(v) { return (v >= 0 ? "+" : "") + v.toFixed(3); }
  function scoresTable(rows) {
    if (!rows.length) { return el("div", "", "Scores are computed for h and c series."); }
    var table = el("table", "scores"), head = el("tr");
    ["feature", "metric", "score", "signed", "rank"].forEach(function (h) { head.appendChild(el("th", "", h)); });
    table.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      [r[0], r[1], r[2].toFixed(3), signed(r[3]), String(r[4])].forEach(function (v) { tr.appendChild(el("td", "", v)); });
      table.appendChild(tr);
    });
    return table;
  }
  function contextList(list) {
    var box = el("div");
    box.appendChild(el("h4", "", list.title));
    list.rows.forEach(function (r) {
      var row = el("div", "context");
      row.appendChild(document.createTextNode(signed(r[0]) + "  " + shown(r[1])));
      var mark = el("b", "", shown(r[2]));
      mark.style.background = "#ffe08a";
      row.appendChild(mark);
      row.appendChild(document.createTextNode(shown(r[3])));
      box.appendChild(row);
    });
    return box;
  }
  function fill(id, child) {
    var target = document.getElementById(id);
    if (target) { target.replaceChildren(child); }
  }
  function renderDetails(data) {
    if (!data) { return window.dash_clientside.no_update; }
    fill("scores", scoresTable(data.scores));
    fill("contexts-high", contextList(data.high));
    fill("contexts-low", contextList(data.low));
    var samples = el("div", "columns");
    data.samples.forEach(function (list) { samples.appendChild(contextList(list)); });
    fill("contexts-samples", samples);
    return data.neuron;
  }
  // Discover: a selection's result, asked for from the Neuron page, is what the user wants to see.
  function scrollToHypotheses(children, search) {
    if (children && /[?&](range|regex)=/.test(search || "")) {
      var target = document.getElementById("discover-hypotheses");
      if (target) { target.scrollIntoView({block: "start"}); }
    }
    return "";
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    lstmvizDetails: { renderDetails: renderDetails, scrollToHypotheses: scrollToHypotheses }
  });
})();
